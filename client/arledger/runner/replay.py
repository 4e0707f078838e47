"""Replay a segment (or the final evaluation) of a claimed run, in a fresh process.

Shared by the trainer (``artrain replay``) and the verifier, which imports
``replay_segment`` and may pass ``wrap`` to run the worker inside a sandbox:
``wrap(argv) -> argv`` receives exactly ``worker_argv(request_path)``.

Two ways to get the fresh process (docs/replay.md):

- default: ``python -m arledger.runner.replay_worker REQ.json`` per replay (~2.7 s of
  interpreter + torch start-up every time);
- ``pool=ReplayPool(...)``: one warm zygote (``arledger.runner.replay_zygote``) forks a
  child per replay that runs the same worker code; start-up is paid once per pool.

Outcomes (``ReplayResult.status``):

- ``match``               produced state hash == h_{i+1}
- ``within_tolerance``    tolerance mode: hashes differ, normalized distance <= threshold
- ``mismatch``            same environment (or tolerance exceeded): evidence for a challenge
- ``environment_differs`` exact mode, hashes differ, and our environment is not the claim's:
                          abstain, do not challenge
- ``artifact_mismatch``   a published checkpoint's bytes do not hash to its h_i
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from arledger import checkpoint, manifest as mf
from arledger.errors import ArledgerError, ManifestError
from arledger.runner import artifacts, determinism
from arledger.runner.loop import ckpt_path

Wrap = Callable[[list[str]], list[str]]
Execute = Callable[[list[str], Path, list[Path]], tuple[int, str, str]]
WORKER_MODULE = "arledger.runner.replay_worker"


class ReplayError(ArledgerError):
    """The replay could not be carried out (worker crashed, timed out, artifact missing)."""


@dataclass(frozen=True)
class ReplayResult:
    segment: int
    status: str
    expected_hash: str
    produced_hash: str | None
    distance: float | None = None
    threshold: float | None = None
    environment_differences: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    startup_s: float = 0.0
    work_s: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("match", "within_tolerance")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worker_argv(request_path: Path | str, python: str | None = None) -> list[str]:
    """The exact command line of one replay worker (wrap it in a sandbox as needed)."""
    return [python or sys.executable, "-m", WORKER_MODULE, str(request_path)]


def _readable(request: dict) -> list[Path]:
    """Every input path of a request (a sandbox must let the worker read exactly these)."""
    paths = [request["code_dir"], *request["data"].values()]
    paths += [request[k] for k in ("start_checkpoint", "weights") if k in request]
    paths += request.get("checkpoints", [])
    return [Path(p) for p in paths]


def run_worker(request: dict, workdir: Path, wrap: Wrap | None = None, timeout: float | None = None,
               execute: Execute | None = None, pool: "ReplayPool | None" = None) -> dict:
    """Write the request, run the worker in a fresh process, parse its one-line JSON answer.

    ``execute(argv, workdir, readable) -> (returncode, stdout, stderr)`` replaces the
    plain subprocess (the verifier's sandbox: ``workdir`` is the only writable place,
    ``readable`` the inputs); ``wrap`` only rewrites argv for the plain subprocess.
    ``pool``: a child forked by the pool's zygote instead (``workdir`` must then be one
    of ``pool.request_dir()``; ``wrap`` and ``execute`` are not used).
    """
    req_path = workdir / "request.json"
    checkpoint.atomic_write(req_path, json.dumps(request, sort_keys=True).encode())
    if pool is not None:
        return pool.run(req_path, workdir, _readable(request), timeout=timeout)
    argv = worker_argv(req_path)
    if execute is not None:
        returncode, stdout, stderr = execute(argv, workdir, _readable(request))
    else:
        if wrap:
            argv = wrap(argv)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ReplayError(f"replay worker: timed out after {timeout}s") from exc
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    lines = [ln for ln in (stdout or "").splitlines() if ln.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = ((stderr or "").strip().splitlines() or ["no output"])[-1]
        raise ReplayError(f"replay worker: exit {returncode}, {tail}") from None
    if not answer.get("ok"):
        raise ReplayError(f"replay worker: {answer.get('error', 'failed')}")
    return answer


class ArtifactSource:
    """Local files of a claim: taken from a run dir when they verify, else fetched by CID."""

    def __init__(self, manifest: mf.Manifest, workdir: Path, run_dir: Path | None = None,
                 store: Any = None, store_spec: str | None = None):
        # Absolute: the worker runs with another cwd (its sandbox scratch dir).
        self.m = manifest
        self.workdir = Path(workdir).resolve()
        self.run_dir = Path(run_dir).resolve() if run_dir else None
        self._store, self._store_spec = store, store_spec

    @property
    def store(self):
        if self._store is None:
            self._store = artifacts.open_store(self._store_spec)
        return self._store

    def code_dir(self) -> Path:
        if self.run_dir and (self.run_dir / "code").is_dir():
            if artifacts.dir_cid(self.run_dir / "code") == self.m.code_cid:
                return self.run_dir / "code"
        dest = self.workdir / "code"
        if not dest.exists():
            self.store.get_dir(self.m.code_cid, dest)
        return dest

    def data_paths(self) -> dict[str, Path]:
        out = {}
        for name, cid in sorted(self.m.datasets.items()):
            local = self.run_dir / "data" / cid if self.run_dir else None
            if local and local.is_file() and artifacts.file_cid(local) == cid:
                out[name] = local
            else:
                out[name] = artifacts.fetch_bytes_to(self.store, cid, self.workdir / f"data-{cid}")
        return out

    def checkpoint(self, i: int) -> Path:
        """Checkpoint i's file; raises ReplayError if its bytes do not hash to h_i."""
        b = self.m.boundaries[i]
        if self.run_dir:
            local = ckpt_path(self.run_dir, i)
            if local.is_file() and checkpoint.file_state_hash(local) == b.state_hash:
                return local
        dest = artifacts.fetch_bytes_to(self.store, b.checkpoint_cid, self.workdir / f"ckpt_{i:04d}.safetensors")
        if checkpoint.file_state_hash(dest) != b.state_hash:
            raise _ArtifactMismatch(i, checkpoint.file_state_hash(dest), b.state_hash)
        return dest

    def weights(self) -> Path:
        if self.run_dir and (self.run_dir / "final.safetensors").is_file():
            if artifacts.file_cid(self.run_dir / "final.safetensors") == self.m.final_weights_cid:
                return self.run_dir / "final.safetensors"
        return artifacts.fetch_bytes_to(self.store, self.m.final_weights_cid, self.workdir / "final.safetensors")


class ArtifactMismatch(ReplayError):
    """A published checkpoint whose bytes do not hash to the manifest's h_i (``index``)."""

    def __init__(self, i: int, got: str, want: str):
        super().__init__(f"checkpoint {i}: bytes hash to {got}, manifest says {want}")
        self.index = i


_ArtifactMismatch = ArtifactMismatch  # the name arverifier.check imports


def normalized_distance(produced: Path, claimed: Path, start: Path) -> float:
    """||θ_produced − θ_claimed|| / ||θ_claimed − θ_start|| over the model's float tensors."""
    p = checkpoint.model_params(produced.read_bytes(), str(produced))
    c = checkpoint.model_params(claimed.read_bytes(), str(claimed))
    s = checkpoint.model_params(start.read_bytes(), str(start))
    if p.keys() != c.keys() or c.keys() != s.keys():
        return math.inf
    num = math.sqrt(sum(float(((p[k].double() - c[k].double()) ** 2).sum()) for k in c))
    den = math.sqrt(sum(float(((c[k].double() - s[k].double()) ** 2).sum()) for k in c))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def load_manifest_ref(ref: str | Path, store: Any = None, store_spec: str | None = None) -> tuple[mf.Manifest, Path | None]:
    """A manifest from a run dir, a manifest file, or a manifest CID; returns (manifest, run_dir)."""
    p = Path(ref)
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise ManifestError(f"{p / 'manifest.json'}: missing (run not finished?)")
        return mf.load(p / "manifest.json"), p
    if p.is_file():
        return mf.load(p), p.parent
    store = store or artifacts.open_store(store_spec)
    data = store.cat(str(ref), max_size=mf.MAX_BYTES)
    return mf.loads(bytes(data), f"manifest {ref}"), None


def replay_segment(
    manifest: mf.Manifest,
    i: int,
    *,
    run_dir: Path | None = None,
    store: Any = None,
    store_spec: str | None = None,
    workdir: Path | None = None,
    threads: int | None = None,
    mode: str = "exact",
    threshold: float | None = None,
    wrap: Wrap | None = None,
    timeout: float | None = None,
    execute: Execute | None = None,
    artifacts: "ArtifactSource | None" = None,
    pool: "ReplayPool | None" = None,
) -> ReplayResult:
    """Replay segment i (steps i*K .. (i+1)*K) from checkpoint i; compare with h_{i+1}.

    With ``pool`` the worker is a child of the pool's zygote, working in a fresh
    ``pool.request_dir()`` (removed afterwards); else a new process per call.
    """
    if not 0 <= i < manifest.segments:
        raise ReplayError(f"segment: {i} out of range 0..{manifest.segments - 1}")
    if mode not in ("exact", "tolerance"):
        raise ReplayError(f"mode: {mode!r} is not 'exact' or 'tolerance'")
    if mode == "tolerance" and threshold is None:
        raise ReplayError("threshold: tolerance mode needs a threshold")
    threads = threads or int(manifest.environment["threads"])
    expected = manifest.boundaries[i + 1].state_hash
    with tempfile.TemporaryDirectory(prefix="arledger-replay-") as tmp:
        work = Path(workdir).resolve() if workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src = artifacts or ArtifactSource(manifest, work, run_dir, store, store_spec)
        try:
            start = src.checkpoint(i)
        except _ArtifactMismatch as exc:
            return ReplayResult(i, "artifact_mismatch", expected, None, detail=str(exc))
        with _request_dir(pool, work) as req_dir:
            return _replay_in(req_dir, manifest, i, src, start, expected, threads, mode, threshold,
                              wrap, timeout, execute, pool)


@contextlib.contextmanager
def _request_dir(pool: "ReplayPool | None", work: Path):
    """Where one request's files go: a fresh pool dir (removed after) or the work dir."""
    if pool is None:
        yield work
        return
    req_dir = pool.request_dir()
    try:
        yield req_dir
    finally:
        shutil.rmtree(req_dir, ignore_errors=True)


def _request(mode: str, src: "ArtifactSource", manifest: mf.Manifest, threads: int, **fields: Any) -> dict:
    """The fields every worker request carries (code, data, seed, threads) plus the mode's own."""
    return {"mode": mode, "code_dir": str(src.code_dir()),
            "data": {k: str(v) for k, v in src.data_paths().items()},
            "seed": manifest.seed, "threads": threads, **fields}


def _replay_in(req_dir: Path, manifest: mf.Manifest, i: int, src: ArtifactSource, start: Path, expected: str,
               threads: int, mode: str, threshold: float | None, wrap: Wrap | None, timeout: float | None,
               execute: Execute | None, pool: "ReplayPool | None") -> ReplayResult:
    out_ckpt = req_dir / f"replay_{i + 1:04d}.safetensors"
    request = _request("segment", src, manifest, threads, start_checkpoint=str(start),
                       steps=manifest.segment_steps, out_checkpoint=str(out_ckpt))
    t0 = time.perf_counter()
    answer = run_worker(request, req_dir, wrap, timeout, execute, pool)
    wall = time.perf_counter() - t0
    produced = answer["state_hash"]
    try:
        written = checkpoint.file_state_hash(out_ckpt)
    except OSError as exc:
        raise ReplayError(f"out_checkpoint: {out_ckpt} unreadable after the replay: {exc}") from None
    if written != produced:  # the answer is claim code's word; the file is what counts
        raise ReplayError(f"state_hash: worker reported {produced}, its checkpoint {out_ckpt.name} hashes to {written}")
    diffs = determinism.differences(manifest.environment, answer["environment"])
    common = dict(wall_s=round(wall, 3), startup_s=round(wall - answer["work_ms"] / 1000, 3), work_s=answer["work_ms"] / 1000,
                  environment_differences=diffs, threshold=threshold)
    if produced == expected:
        return ReplayResult(i, "match", expected, produced, distance=0.0 if mode == "tolerance" else None, **common)
    try:
        claimed = src.checkpoint(i + 1)
    except _ArtifactMismatch as exc:
        return ReplayResult(i, "artifact_mismatch", expected, produced, detail=str(exc), **common)
    dist = normalized_distance(out_ckpt, claimed, start)
    if mode == "tolerance":
        status = "within_tolerance" if dist <= threshold else "mismatch"
    else:
        status = "environment_differs" if diffs else "mismatch"
    return ReplayResult(i, status, expected, produced, distance=dist, **common)


def evaluate_final(manifest: mf.Manifest, *, run_dir: Path | None = None, store: Any = None,
                   store_spec: str | None = None, threads: int | None = None, wrap: Wrap | None = None,
                   timeout: float | None = None, execute: Execute | None = None,
                   artifacts: "ArtifactSource | None" = None, pool: "ReplayPool | None" = None) -> dict[str, float]:
    """Re-evaluate the final weights in a fresh process (or a child of ``pool``); returns the metrics."""
    threads = threads or int(manifest.environment["threads"])
    with tempfile.TemporaryDirectory(prefix="arledger-eval-") as tmp:
        work = Path(tmp)
        src = artifacts or ArtifactSource(manifest, work, run_dir, store, store_spec)
        request = _request("evaluate", src, manifest, threads, weights=str(src.weights()))
        with _request_dir(pool, work) as req_dir:
            return run_worker(request, req_dir, wrap, timeout, execute, pool)["metrics"]


def probe_checkpoints(manifest: mf.Manifest, *, run_dir: Path | None = None, store: Any = None,
                      store_spec: str | None = None, threads: int | None = None, wrap: Wrap | None = None,
                      timeout: float | None = None, execute: Execute | None = None,
                      artifacts: "ArtifactSource | None" = None,
                      pool: "ReplayPool | None" = None) -> list[dict[str, float]] | None:
    """train.py's optional ``probe`` on every boundary checkpoint 0..N, in ONE fresh process
    (or child of ``pool``): ``[{"train": loss, "val": loss}, ...]``, or None when the
    experiment has no ``probe``. Cheap (no training); the verifier's loss-based suspicion
    signal (``arverifier.sampling.probe_scores``). Checkpoints are hash-checked first."""
    threads = threads or int(manifest.environment["threads"])
    with tempfile.TemporaryDirectory(prefix="arledger-probe-") as tmp:
        work = Path(tmp)
        src = artifacts or ArtifactSource(manifest, work, run_dir, store, store_spec)
        request = _request("probe", src, manifest, threads,
                           checkpoints=[str(src.checkpoint(i)) for i in range(manifest.segments + 1)])
        with _request_dir(pool, work) as req_dir:
            probes = run_worker(request, req_dir, wrap, timeout, execute, pool).get("probes")
    if probes is None:
        return None
    if not isinstance(probes, list) or len(probes) != manifest.segments + 1:
        raise ReplayError(f"probes: worker returned {type(probes).__name__} for {manifest.segments + 1} checkpoints")
    out = []
    for i, p in enumerate(probes):  # the answer is claim code's word: check its shape
        try:
            vals = {k: float(p[k]) for k in ("train", "val")}
        except (TypeError, KeyError, ValueError):
            raise ReplayError(f"probes[{i}]: not a {{'train': float, 'val': float}} object") from None
        if not all(math.isfinite(v) for v in vals.values()):
            raise ReplayError(f"probes[{i}]: non-finite loss {vals}")
        out.append(vals)
    return out


from arledger.runner.replay_pool import ReplayPool  # noqa: E402 - re-exported; it needs ReplayError above

