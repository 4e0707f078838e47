"""Replay a segment, evaluate the final weights, probe every checkpoint: the requests a
trainer (``artrain replay``) and a verifier run against a claim, through one executor.

Every function takes a ``Replay`` (what the claim is, where its files are, which
executor runs claim code and which runs the task's harness) and builds
``WorkRequest``s (``arledger.execution.executors``):

- ``replay_segment(r, i)``: segment i from checkpoint i, compared with h_{i+1};
- ``evaluate_final(r, check_seed)``: the harness makes the held-out inputs, the claim's
  model predicts (a request of its own, training split only), the harness scores; with a
  ``check_seed`` a second prediction on inputs spliced after seed-drawn cuts tests
  causality (``arledger.scoring.perturb``);
- ``probe_checkpoints(r)``: the harness's probe slices through every checkpoint.

Outcomes of a replay (``ReplayResult.status``):

- ``match``               produced state hash == h_{i+1}
- ``within_tolerance``    tolerance mode: hashes differ, normalized distance <= threshold
- ``mismatch``            same environment (or tolerance exceeded): evidence for a challenge
- ``environment_differs`` exact mode, hashes differ, and this environment is not the claim's:
                          abstain, do not challenge
- ``artifact_mismatch``   a published checkpoint's bytes do not hash to its h_i

The environment compared is the one the caller states for its executor
(``Replay.environment``), never what the worker reports: that is claim code's word.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from safetensors.torch import load_file, save_file

from arledger import checkpoint, manifest as mf
from arledger.errors import ArtifactMismatch, ManifestError, ReplayError
from arledger.execution import isolation
from arledger.execution.executors import Done, Executor, InProcessExecutor, WorkRequest
from arledger.execution.limits import Limits
from arledger.protocol import artifacts as art
from arledger.runner import determinism
from arledger.runner.budget import Budget, counted_flops, Measured, TIME_FAR, TIME_TRIES, TimeBase
from arledger.runner.worker import ClaimCode, run_request

__all__ = ["ArtifactMismatch", "ArtifactSource", "EvalResult", "Replay", "ReplayError", "ReplayResult",
           "evaluate_final", "load_manifest_ref", "probe_checkpoints", "replay_segment"]


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
    work_s: float = 0.0
    detail: str = ""
    flops: int | None = None  # counted in the replay (claim process: its word)
    cpu_s: float | None = None  # the request's CPU time as the executor's parent measured it

    @property
    def ok(self) -> bool:
        return self.status in ("match", "within_tolerance")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalResult:
    """The harness's verdict on the final weights: metrics, or why the outputs were rejected."""

    metrics: dict[str, float] | None
    invalid: str | None = None
    causality: dict | None = None  # {"checked", "violations", "examples"} when a check_seed was given
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.invalid is None and self.metrics is not None and not (self.causality or {}).get("violations")

    @property
    def problem(self) -> str | None:
        if self.invalid:
            return f"outputs rejected by the harness: {self.invalid}"
        if (self.causality or {}).get("violations"):
            c = self.causality
            return (f"not causal: at {c['violations']} of {c['checked']} checked positions the output changed "
                    f"when only later inputs did (row, cut: {c['examples']})")
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ArtifactSource:
    """Local files of a claim: taken from a run dir when they verify, else fetched by CID.

    Held-out splits are fetched to ``heldout/`` and handed only to harness requests.
    """

    def __init__(self, manifest: mf.Manifest, workdir: Path, run_dir: Path | None = None,
                 store: Any = None, store_spec: str | None = None):
        self.m = manifest
        self.workdir = Path(workdir).resolve()
        self.run_dir = Path(run_dir).resolve() if run_dir else None
        self._store, self._store_spec = store, store_spec

    @property
    def store(self):
        if self._store is None:
            self._store = art.open_store(self._store_spec)
        return self._store

    def _dir(self, name: str, cid: str) -> Path:
        if self.run_dir and (self.run_dir / name).is_dir() and art.dir_cid(self.run_dir / name) == cid:
            return self.run_dir / name
        return art.fetch_dir(self.store, cid, self.workdir / name)

    def code_dir(self) -> Path:
        return self._dir("code", self.m.code_cid)

    def harness_dir(self) -> Path:
        return self._dir("harness", self.m.harness_cid)

    def _data(self, names) -> dict[str, Path]:
        out = {}
        for name in sorted(names):
            cid = self.m.datasets[name]
            sub = "data" if name in self.m.train_splits else "heldout"
            local = self.run_dir / sub / cid if self.run_dir else None
            if local and local.is_file() and art.file_cid(local) == cid:
                out[name] = local
            else:
                (self.workdir / sub).mkdir(parents=True, exist_ok=True)
                out[name] = art.fetch_bytes_to(self.store, cid, self.workdir / sub / cid)
        return out

    def train_paths(self) -> dict[str, Path]:
        return self._data(self.m.train_splits)

    def all_paths(self) -> dict[str, Path]:
        return self._data(self.m.datasets)

    def checkpoint(self, i: int) -> Path:
        """Checkpoint i's file; raises ArtifactMismatch if its bytes do not hash to h_i."""
        b = self.m.boundaries[i]
        if self.run_dir:
            local = art.ckpt_path(self.run_dir, i)
            if local.is_file() and checkpoint.file_state_hash(local) == b.state_hash:
                return local
        dest = art.fetch_bytes_to(self.store, b.checkpoint_cid, self.workdir / f"ckpt_{i:04d}.safetensors")
        if checkpoint.file_state_hash(dest) != b.state_hash:
            raise ArtifactMismatch(i, checkpoint.file_state_hash(dest), b.state_hash)
        return dest

    def weights(self) -> Path:
        if self.run_dir and (self.run_dir / "final.safetensors").is_file():
            if art.file_cid(self.run_dir / "final.safetensors") == self.m.final_weights_cid:
                return self.run_dir / "final.safetensors"
        return art.fetch_bytes_to(self.store, self.m.final_weights_cid, self.workdir / "final.safetensors")


@dataclass
class Replay:
    """Everything a replay, an evaluation or a probe of one claim needs (a request object).

    ``executor`` runs claim code; ``harness_executor`` runs the task's harness (it holds
    the held-out split, so it must never be the process claim code runs in).
    ``environment`` is the environment of the executor's runs as the caller knows it.
    """

    manifest: mf.Manifest | None  # None: a run's own weights, before its manifest exists
    files: "ArtifactSource | RunFiles"
    executor: Executor
    harness_executor: Executor
    threads: int
    seed: int
    mode: str = "exact"
    threshold: float | None = None
    limits: Limits | None = None
    environment: dict | None = None
    budget: Budget | None = None  # the task's compute budget: replays count FLOPs and time against it
    time_base: TimeBase | None = None  # the task's baseline timed on this machine (protocol.timebase)
    base_now: Callable[[], TimeBase] | None = None  # the baseline timed again now, before an accusation

    def __post_init__(self):
        if self.mode not in ("exact", "tolerance"):
            raise ReplayError(f"mode: {self.mode!r} is not 'exact' or 'tolerance'")
        if self.mode == "tolerance" and self.threshold is None:
            raise ReplayError("threshold: tolerance mode needs a threshold")
        if self.environment is None:
            self.environment = determinism.environment(self.threads)

    def _claim(self) -> ClaimCode:
        return ClaimCode(self.files.code_dir(), self.files.train_paths(), self.seed, self.threads)

    def _harness(self, label: str, op: str, files: dict[str, Path], **extra: Any):
        paths = self.files.all_paths()
        body = {"mode": "harness", "op": op, "harness": "harness", "threads": self.threads,
                "data": {k: f"data/{k}" for k in paths}, **extra}
        inputs = {"harness": self.files.harness_dir(), **{f"data/{k}": p for k, p in paths.items()}, **files}
        return self.harness_executor.run(WorkRequest(label, body, inputs, self.limits))

    def _predict(self, models: list[Path], kind: str, inputs_file: Path, keep: Path) -> list[Path]:
        """The claim's model on ``inputs_file``, once per model; outputs are moved to ``keep``."""
        names = [f"m{j}.safetensors" for j in range(len(models))]
        files = {"inputs.safetensors": inputs_file, **dict(zip(names, models))}
        req = self._claim().request("predict", "predict", files, self.limits, inputs="inputs.safetensors",
                                    models=names, kind=kind)
        kept = []
        with self.executor.run(req) as done:
            for j in range(len(models)):
                kept.append(_keep(done, f"outputs-{j}.safetensors", keep))
        return kept


@dataclass(frozen=True)
class ReplayOptions:
    """How ``replay`` sets up a ``Replay``: where the claim's files come from (``run_dir`` when
    they verify, else fetched by CID from ``store``/``store_spec`` into ``workdir``), what runs
    the claim's code and the harness, and what the replay is held to (a task's mode,
    threshold, limits and budget). Every field has the trainer's default."""

    run_dir: Path | None = None
    store: Any = None
    store_spec: str | None = None
    workdir: Path | None = None
    executor: Executor | None = None  # default: this process's shared sandboxed pool
    harness_executor: Executor | None = None  # default: this process's shared sandboxed harness pool
    threads: int | None = None  # default: the manifest's
    mode: str = "exact"
    threshold: float | None = None
    limits: Limits | None = None
    budget: Budget | None = None
    time_base: TimeBase | None = None  # the task's baseline timed here (protocol.timebase)
    base_now: Callable[[], TimeBase] | None = None  # the same, timed again now (timebase.time_now)


def task_options(spec: Any, store: Any, workdir: Path, run_dir: Path | None = None, **timing: Any) -> ReplayOptions:
    """What a verifier holds a claim of task ``spec`` (an ``arledger.taskspec.TaskSpec``) to: the
    task's sandbox for both roles (this process's pools), its mode, threshold, limits and budget.
    A trainer looks at its own run this way before staking it (``arledger.submit``, the agent).
    ``timing``: ``time_base`` and ``base_now`` (``arledger.protocol.timebase``), if the time is checked."""
    iso = isolation.for_task(spec)
    return ReplayOptions(run_dir=run_dir, store=store, workdir=workdir, executor=isolation.executor(iso),
                         harness_executor=isolation.executor(iso, "harness"), mode=spec.mode,
                         threshold=spec.threshold, limits=spec.sandbox_limits(), budget=spec.work_budget, **timing)


def replay(manifest: mf.Manifest, opts: ReplayOptions = ReplayOptions()) -> Replay:
    """A ``Replay`` of ``manifest`` set up as ``opts`` says (``ReplayOptions``)."""
    work = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="arledger-replay-"))
    work.mkdir(parents=True, exist_ok=True)
    threads = opts.threads or int(manifest.environment["threads"])
    return Replay(manifest, ArtifactSource(manifest, work, opts.run_dir, opts.store, opts.store_spec),
                  opts.executor or isolation.executor(isolation.Isolation.of(limits=opts.limits)),
                  # the harness a manifest names is whoever made the manifest's choice: sandboxed too
                  opts.harness_executor or isolation.executor(isolation.Isolation.of(limits=opts.limits), "harness"),
                  threads, manifest.seed, opts.mode, opts.threshold, opts.limits, budget=opts.budget,
                  time_base=opts.time_base, base_now=opts.base_now)


@dataclass(frozen=True)
class RunFiles:
    """The files of a run in progress (``ArtifactSource``'s methods, for the trainer's own run)."""

    workdir: Path
    code: Path
    harness: Path
    train: dict[str, Path]
    heldout: dict[str, Path]

    def code_dir(self) -> Path:
        return self.code

    def harness_dir(self) -> Path:
        return self.harness

    def train_paths(self) -> dict[str, Path]:
        return dict(self.train)

    def all_paths(self) -> dict[str, Path]:
        return {**self.train, **self.heldout}


def evaluate_local(files: RunFiles, weights: Path, seed: int, threads: int, executor: Executor,
                   harness_executor: Executor | None = None) -> EvalResult:
    """The harness's evaluation of weights the caller made (a run, a task's baseline): the
    claim's model predicts through ``executor`` (the run's own), the harness's steps through
    ``harness_executor`` (default: this process, for a harness the caller runs anyway)."""
    own = harness_executor is None
    harness_ex = harness_executor or InProcessExecutor(run_request, root=files.workdir / "harness-work")
    try:
        return evaluate_weights(Replay(None, files, executor, harness_ex, threads, seed), weights)
    finally:
        if own:
            harness_ex.close()


def _keep(done: Done, name: str, dest_dir: Path) -> Path:
    src = done.file(name)  # checked: a plain file of its own (never a link to the caller's files)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{time.monotonic_ns()}-{name}"
    src.replace(dest) if src.stat().st_dev == dest_dir.stat().st_dev else dest.write_bytes(src.read_bytes())
    return dest


# -- a segment ---------------------------------------------------------------------------


def replay_segment(r: Replay, i: int) -> ReplayResult:
    """Replay segment i (steps i*K .. (i+1)*K) from checkpoint i; compare with h_{i+1}."""
    m = r.manifest
    if not 0 <= i < m.segments:
        raise ReplayError(f"segment: {i} out of range 0..{m.segments - 1}")
    expected = m.boundaries[i + 1].state_hash
    try:
        start = r.files.checkpoint(i)
    except ArtifactMismatch as exc:
        return ReplayResult(i, "artifact_mismatch", expected, None, detail=str(exc))
    # The first step counted (FLOPs: the run's report and a first refusal), the rest at full speed:
    # time is the rule, and a replay costs what the segment's training did.
    count = 1 if r.budget is not None else 0
    req = r._claim().segment(f"segment-{i:04d}", start, m.segment_steps, count=count, limits=r.limits)
    t0 = time.perf_counter()
    with r.executor.run(req) as done:
        wall = time.perf_counter() - t0
        out = _keep(done, "out.safetensors", r.files.workdir / "replays")
        work_ms = done.answer.get("work_ms")
        work_s = work_ms / 1000 if isinstance(work_ms, (int, float)) else 0.0
        work = Measured(done.answer.get("flops"), count, done.cpu_s)
    try:
        produced = checkpoint.file_state_hash(out)  # the file is what counts, not the worker's word
        diffs = determinism.differences(m.environment, r.environment)
        base = r.time_base
        if r.budget is not None and (produced == expected or r.mode == "tolerance"):
            work, base = _lowest_time(r, _Timed(req, "out.safetensors", produced, "segment_s"), work)
        common = dict(wall_s=round(wall, 3), work_s=round(work_s, 3), environment_differences=diffs,
                      threshold=r.threshold, flops=counted_flops(work.flops), cpu_s=work.cpu_s)
        over = r.budget.segment_problem(work, base) if r.budget is not None else ""
        if produced == expected:
            if over:  # the right bits, from more work than the task allows
                return ReplayResult(i, "over_budget", expected, produced, detail=over, **common)
            return ReplayResult(i, "match", expected, produced, distance=0.0 if r.mode == "tolerance" else None, **common)
        try:
            claimed = r.files.checkpoint(i + 1)
        except ArtifactMismatch as exc:
            return ReplayResult(i, "artifact_mismatch", expected, produced, detail=str(exc), **common)
        dist = normalized_distance(out, claimed, start)
        if r.mode == "tolerance":
            status = "within_tolerance" if dist <= r.threshold else "mismatch"
            if status == "within_tolerance" and over:
                return ReplayResult(i, "over_budget", expected, produced, distance=dist, detail=over, **common)
        else:
            status = "environment_differs" if diffs else "mismatch"
        return ReplayResult(i, status, expected, produced, distance=dist, **common)
    finally:
        out.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Timed:
    """A request to time again: what it writes (``output``), the bits its first try produced, and
    which of the baseline's times it is held to (``TimeBase.segment_s`` or ``start_s``)."""

    req: WorkRequest
    output: str
    produced: str
    base_field: str


def _share(r: Replay, t: _Timed, work: Measured, base: TimeBase) -> float:
    """The request's time over its line against ``base`` (over 1: over the line): what tries held
    to different timings of the baseline are compared by (a raw ratio would leave out the slack,
    which is worth more against a smaller base)."""
    line = r.budget.time_line(getattr(base, t.base_field))
    return (work.cpu_s or 0.0) / line if line else 0.0


def _lowest_time(r: Replay, t: _Timed, work: Measured) -> tuple[Measured, TimeBase | None]:
    """The time a request is judged by, and the baseline it is held to.

    Under the line against the kept time base (``Replay.time_base``): that try. Over it, the
    baseline is timed again now (``Replay.base_now``). More than ``TIME_FAR`` times its line
    even against that (or the kept base, whichever is slower), the first try decides.
    Otherwise the request runs again, up to ``TIME_TRIES`` times, each try followed by the
    baseline timed again: a try is held to the faster of the two timings around it (or the
    kept base, whichever is slower), the try with the lowest share of its line counts, and the
    first under the line ends it. A try that produced other bits than the first is not counted.

    A busy or slowed machine adds time to a try and to the timings on both sides of it alike:
    the second look spares an honest claim, and a kept base from a faster moment accuses
    nobody. A slow moment that catches only the baseline's timing raises one side of a try,
    never both, so a claim over the line does not pass on it; and work that changes the bits
    is there on every try that reproduces them, so a cheat cannot look fast by skipping its
    work on some tries."""
    base = r.time_base
    if base is None or work.cpu_s is None or _share(r, t, work, base) <= 1:
        return work, base
    before = _now(r, base)
    if _share(r, t, work, _slower(base, before)) > TIME_FAR:
        return work, _slower(base, before)  # far over the line even now: no noise comes near, one try decides
    best = (work, base)
    for _ in range(TIME_TRIES):
        with r.executor.run(t.req) as done:
            same = checkpoint.file_state_hash(done.file(t.output)) == t.produced
            tried = Measured(work.flops, work.counted, done.cpu_s)
        after = _now(r, base)
        around = _slower(base, _faster(before, after))
        before = after
        if not same or tried.cpu_s is None:
            continue
        if _share(r, t, tried, around) < _share(r, t, *best):
            best = (tried, around)
        if _share(r, t, *best) <= 1:
            break
    return best


def _now(r: Replay, base: TimeBase) -> TimeBase:
    return r.base_now() if r.base_now is not None else base


def _faster(a: TimeBase, b: TimeBase) -> TimeBase:
    """Two timings of the baseline, field by field, whichever is faster: a slow moment that
    caught one of them does not raise the line of the try between them."""
    return TimeBase(min(a.segment_s, b.segment_s), min(a.start_s, b.start_s), a.machine)


def _slower(kept: TimeBase, now: TimeBase) -> TimeBase:
    """The kept base or the one timed now, field by field, whichever is slower: a machine
    faster now than when its base was kept is held to the kept one."""
    return TimeBase(max(kept.segment_s, now.segment_s), max(kept.start_s, now.start_s), kept.machine)


@dataclass(frozen=True)
class StartResult:
    """Checkpoint 0 rebuilt from the seed by the claim's own build(): equal to h_0, within budget?"""

    status: str  # match | mismatch | over_budget
    expected_hash: str
    produced_hash: str
    flops: int | None = None
    cpu_s: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "match"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rebuild_start(r: Replay) -> StartResult:
    """Run the claim's ``load_data`` + ``build()`` from the run's seed (FLOPs counted) and compare
    the state it makes with the claimed checkpoint 0: a start that is not the seed's (a model
    trained elsewhere, then published as step 0) does not match; one trained inside build()
    matches but spends more than the task's start-up budget."""
    m = r.manifest
    expected = m.boundaries[0].state_hash
    req = r._claim().build("build", r.limits)
    with r.executor.run(req) as done:
        out_copy = _keep(done, "start.safetensors", r.files.workdir / "replays")
        work = Measured(done.answer.get("flops"), 0, done.cpu_s)
    flops = counted_flops(work.flops)
    try:
        produced = checkpoint.file_state_hash(out_copy)
        if produced != expected and not _start_within_tolerance(r, out_copy):
            return StartResult("mismatch", expected, produced, flops, work.cpu_s,
                               f"checkpoint 0 is not what build() makes from seed {m.seed}: "
                               f"rebuilt {produced}, claimed {expected}")
    finally:
        out_copy.unlink(missing_ok=True)
    over = ""
    if r.budget is not None:
        work, base = _lowest_time(r, _Timed(req, "start.safetensors", produced, "start_s"), work)
        over = r.budget.startup_problem(work, base)
    return StartResult("over_budget" if over else "match", expected, produced, flops, work.cpu_s, over)


def _start_within_tolerance(r: Replay, rebuilt: Path) -> bool:
    """Tolerance mode: a rebuilt start within ``threshold`` of the claimed checkpoint 0, relative
    to its norm (another machine's init draws may differ in the last bits; a start trained
    elsewhere is far from the seed's)."""
    if r.mode != "tolerance":
        return False
    try:
        p = checkpoint.model_params(rebuilt.read_bytes(), str(rebuilt))
    except Exception:  # noqa: BLE001 - the file is claim code's output
        return False
    claimed = r.files.checkpoint(0)
    c = checkpoint.model_params(claimed.read_bytes(), str(claimed))
    if p.keys() != c.keys() or any(p[k].shape != c[k].shape for k in c):
        return False
    return _l2(p, c) / (_l2(c) or 1.0) <= r.threshold


def _l2(a: dict, b: dict | None = None) -> float:
    """||a - b|| (or ||a||) over the tensors of a state dict, in float64."""
    return math.sqrt(sum(float(((a[k].double() - (b[k].double() if b is not None else 0)) ** 2).sum()) for k in a))


def normalized_distance(produced: Path, claimed: Path, start: Path) -> float:
    """||θ_produced − θ_claimed|| / ||θ_claimed − θ_start|| over the model's float tensors."""
    try:
        p = checkpoint.model_params(produced.read_bytes(), str(produced))
    except Exception:  # noqa: BLE001 - the produced file is claim code's output
        return math.inf
    c = checkpoint.model_params(claimed.read_bytes(), str(claimed))
    s = checkpoint.model_params(start.read_bytes(), str(start))
    if p.keys() != c.keys() or c.keys() != s.keys() or any(p[k].shape != c[k].shape for k in c):
        return math.inf
    num, den = _l2(p, c), _l2(c, s)
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


# -- the final evaluation ----------------------------------------------------------------


def evaluate_final(r: Replay, check_seed: bytes | None = None) -> EvalResult:
    """The harness's metrics of the final weights; with ``check_seed``, the causality check too."""
    return assess(r, r.files.weights(), check_seed, probe=False).evaluation


def evaluate_weights(r: Replay, weights: Path, check_seed: bytes | None = None) -> EvalResult:
    return assess(r, weights, check_seed, probe=False).evaluation


def probe_checkpoints(r: Replay) -> list[dict[str, float]] | None:
    """The harness's probe losses ``{"train", "val"}`` of every checkpoint 0..N (checkpoints
    hash-checked first), or None when the harness has no probe or the claim's outputs are
    unusable."""
    return assess(r, None, None, probe=True).probes


@dataclass(frozen=True)
class Assessment:
    """What the harness says of a claim's model: its evaluation and its probe losses."""

    evaluation: EvalResult | None
    probes: list[dict[str, float]] | None
    probe_problem: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def assess(r: Replay, weights: Path | None, check_seed: bytes | None, probe: bool) -> Assessment:
    """The final evaluation of ``weights`` (None: none), with the causality check when
    ``check_seed`` is given, and the loss probe of every checkpoint when ``probe``.

    Two harness requests whatever is asked (inputs, then scores) around the claim's
    predictions: the probe (every checkpoint, one request), the evaluation and the
    causality check (one request each, identical but for the inputs, in an order drawn
    from ``check_seed``, so claim code cannot tell which is which).
    """
    t0 = time.perf_counter()
    keep = r.files.workdir / "assess"
    keep.mkdir(parents=True, exist_ok=True)
    seed_hex = check_seed.hex() if check_seed is not None and weights is not None else None
    with r._harness("harness", "inputs", {}, check_seed=seed_hex, probe=probe) as done:
        tensors = load_file(str(done.file("inputs.safetensors")))
        plan = _keep(done, "plan.json", keep)
    t_inputs = time.perf_counter()
    files: dict[str, Path] = {"plan.json": plan}
    body: dict[str, Any] = {"outputs": None, "plan": "plan.json", "probe_outputs": None}
    probe_tensors = {k: v for k, v in tensors.items() if k.startswith("probe_")}
    probe_failed = None
    if probe and probe_tensors:
        ckpts = [r.files.checkpoint(i) for i in range(r.manifest.segments + 1)]
        f = keep / "inputs-probe.safetensors"
        save_file(probe_tensors, str(f))
        try:
            outs = r._predict(ckpts, "checkpoint", f, keep)
        except ArtifactMismatch:
            raise
        except ReplayError as exc:  # a model that fails the probe is no accusation: the probe only samples
            probe_failed = f"the model failed on the probe slices: {exc}"
        else:
            names = [f"probe-{j}.safetensors" for j in range(len(outs))]  # checkpoint order, not name order
            files.update(zip(names, outs))
            body["probe_outputs"] = names
    t_probe = time.perf_counter()
    if weights is not None:
        batches = {"eval": tensors["eval"]}
        if "perturbed" in tensors:
            batches["check"] = tensors["perturbed"]
            if check_seed[0] & 1:  # which comes first is the verifier's secret too (pids count requests)
                batches = {"check": batches["check"], "eval": batches["eval"]}
        outputs = {}
        for name, x in batches.items():  # one request each: the claim cannot tell the check from the eval
            f = keep / f"inputs-{name}.safetensors"
            save_file({"eval": x}, str(f))
            outputs["eval" if name == "eval" else "perturbed"] = r._predict([weights], "weights", f, keep)[0]
        files.update({f"outputs-{k}.safetensors": p for k, p in outputs.items()})
        body["outputs"] = {k: f"outputs-{k}.safetensors" for k in outputs}
    t_eval = time.perf_counter()
    no_probe = probe_failed or (None if probe_tensors or not probe else "the harness has no probe")
    if body["outputs"] is None and body["probe_outputs"] is None:
        return Assessment(None, None, no_probe)
    with r._harness("harness", "score", files, **body) as done:
        a = done.answer
    for p in files.values():
        p.unlink(missing_ok=True)
    t_end = time.perf_counter()
    evaluation = None
    if weights is not None:
        wall = round((t_eval - t_probe) + (t_end - t_eval) + (t_inputs - t0), 3)
        if a.get("invalid"):
            evaluation = EvalResult(None, str(a["invalid"])[:500], None, wall)
        else:
            evaluation = EvalResult({str(k): float(v) for k, v in a["metrics"].items()}, None, a.get("causality"), wall)
    probes, problem = None, no_probe
    if body["probe_outputs"] is not None:
        probes, problem = _probes(a, r.manifest.segments + 1)
    return Assessment(evaluation, probes, problem,
                      {"inputs": round(t_inputs - t0, 3), "probe": round(t_probe - t_inputs, 3),
                       "predict": round(t_eval - t_probe, 3), "score": round(t_end - t_eval, 3)})


def _probes(answer: dict, expected: int) -> tuple[list[dict[str, float]] | None, str | None]:
    if answer.get("probe_invalid"):
        return None, str(answer["probe_invalid"])[:500]
    probes = answer.get("probes")
    if not isinstance(probes, list) or len(probes) != expected:
        return None, f"harness returned {type(probes).__name__} for {expected} checkpoints"
    return [{k: float(p[k]) for k in ("train", "val")} for p in probes], None


def load_manifest_ref(ref: str | Path, store: Any = None, store_spec: str | None = None) -> tuple[mf.Manifest, Path | None]:
    """A manifest from a run dir, a manifest file, or a manifest CID; returns (manifest, run_dir)."""
    p = Path(ref)
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise ManifestError(f"{p / 'manifest.json'}: missing (run not finished?)")
        return mf.load(p / "manifest.json"), p
    if p.is_file():
        return mf.load(p), p.parent
    store = store or art.open_store(store_spec)
    return mf.fetch(store, str(ref)), None
