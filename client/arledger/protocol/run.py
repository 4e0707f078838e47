"""The segmented training run: train N steps in segments of K, checkpoint every boundary,
pin everything, evaluate, write the manifest.

Run directory layout (``out``):

    code/                     train.py + experiment.json exactly as run (-> code_cid)
    harness/                  the task harness's harness.py (-> harness_cid)
    data/<cid>                training splits (all that train.py is handed)
    heldout/<cid>             held-out splits (read by the harness only)
    checkpoints/ckpt_0000.safetensors ... ckpt_<N/K>.safetensors
    final.safetensors         params + buffers only (-> final_weights_cid)
    progress.json             boundaries so far (resume point); removed at the end
    manifest.json             written last, atomically: its presence means "run complete"

A crash leaves no manifest and a consistent progress.json; running the same command
again resumes from the last checkpoint (its hash is checked before it is trusted).

Where the code runs (``RunOptions.sandbox``): by default every piece of ``train.py`` runs
in the sandbox (``arledger.execution.isolation``) as ``build`` and ``segment`` requests,
the same requests a verifier replays, so code fetched from the ledger never runs next
to the trainer's key. ``sandbox=False`` trains in this process (one's own code, and
the attack hooks of tests and the demo, which are code of this process by nature).
The state hashes are the same either way: a segment from its start checkpoint is what
replay checks bit for bit.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from arledger import checkpoint, manifest as mf, outdir
from arledger.errors import ExperimentError
from arledger.execution import isolation, kernels
from arledger.execution.executors import Executor
from arledger.execution.limits import Limits
from arledger.files import atomic_write
from arledger.harness import HARNESS_FILE, load_harness
from arledger.micro import to_micro
from arledger.protocol import artifacts
from arledger.protocol.artifacts import ckpt_path
from arledger.protocol.replay import evaluate_local, RunFiles
from arledger.runner import budget, determinism
from arledger.runner.experiment import load_experiment, read_spec
from arledger.runner.session import Session
from arledger.runner.worker import ClaimCode

# What a run dir made before markers existed holds (all of one group: made by a run).
RUN_FILES = (("progress.json", "checkpoints", "code"), ("manifest.json", "checkpoints", "code", "final.safetensors"))
ProgressCallback = Callable[[int, float, int, int], None]  # (step, loss, segment, total steps)
# (session, segment index, steps, per-step callback) -> None. The default trains honestly;
# adversarial tests pass their own to forge one segment (a faked jump, other data).
SegmentTrainer = Callable[[Session, int, int, Callable | None], None]


def train_segment_honestly(session: Session, i: int, k: int, on_step: Callable | None) -> None:
    session.train_steps(k, on_step=on_step, count=1)  # the first step's FLOPs: the run's work report


@dataclass(frozen=True)
class RunOptions:
    experiment_dir: Path
    out: Path
    steps: int | None = None
    segment_steps: int | None = None
    seed: int = 0
    threads: int = 1
    store_spec: str | None = None
    harness_dir: Path | None = None  # default: the "harness" experiment.json names
    task_id: int | None = None
    parent: int | None = None
    trainer: str | None = None
    hypothesis: str = ""
    notes: str = ""
    cpu_kernels: str | None = "avx2"  # the task's kernel pin (arledger.execution.kernels); None: none
    force: bool = False  # use an --out directory that is not empty and was not made by a run
    sandbox: bool = True  # train.py runs sandboxed (module docstring); False: in this process
    limits: Limits | None = None  # what one sandboxed request may use (a task's limits; default Limits())


@dataclass
class RunResult:
    manifest: mf.Manifest
    manifest_path: Path
    manifest_cid: str
    resumed_from: int | None
    timings_ms: dict[str, int] = field(default_factory=dict)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _budget(opts: RunOptions, default_steps: int | None, default_k: int | None) -> tuple[int, int]:
    steps = opts.steps or default_steps
    k = opts.segment_steps or default_k or steps
    if not steps or steps < 1:
        raise ExperimentError("steps: give --steps or defaults.steps in experiment.json")
    if k < 1 or steps % k:
        raise ExperimentError(f"segment_steps: {k} must be >= 1 and divide steps {steps}")
    if steps // k > 1024:
        raise ExperimentError(f"segment_steps: {steps // k} segments exceeds 1024 (manifest size)")
    return steps, k


def _check_claim_fields(opts: RunOptions) -> None:
    """Reject manifest fields the schema would refuse before training, not after."""
    if opts.trainer is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", opts.trainer):
        raise ExperimentError(f"trainer: {opts.trainer!r} is not a 0x-prefixed 20-byte address")
    for name in ("hypothesis", "notes"):
        if len(getattr(opts, name)) > 16384:
            raise ExperimentError(f"{name}: longer than 16384 characters")


class _InProcessTraining:
    """train.py in this process, one ``Session`` throughout (``RunOptions(sandbox=False)``)."""

    def __init__(self, code_dir: Path, train: dict[str, Path], opts: RunOptions, hook: SegmentTrainer):
        self.session = Session(load_experiment(code_dir), train, opts.seed, opts.threads, count_startup=True)
        self.hook = hook

    def start(self) -> bytes:
        return self.session.capture()

    def resume(self, data: bytes, source: str) -> None:
        self.session.restore(data, source)

    def segment(self, i: int, k: int, start: Path, on_step: Callable | None) -> bytes:
        self.hook(self.session, i, k, on_step)
        return self.session.capture()

    def work(self) -> dict[str, int]:
        s = self.session
        return {"startup_flops": int(s.startup_flops or 0), "step_flops_max": int(s.max_step_flops),
                "counted_steps": int(s.counted_steps)}


class _SandboxedTraining:
    """train.py as ``build`` and ``segment`` requests through ``executor`` (the sandbox's pool):
    each segment starts from the boundary checkpoint already on disk, as a replay does."""

    def __init__(self, executor: Executor, code_dir: Path, train: dict[str, Path], opts: RunOptions):
        self.executor, self.limits = executor, opts.limits
        self.claim = ClaimCode(code_dir, train, opts.seed, opts.threads)
        self.startup_flops = 0
        self.step_flops_max = 0
        self.counted_steps = 0
        # the kernel's account of each request (the requests a verifier's replays are): what
        # `artrain submit` holds to the task's time budget on this machine before any gas
        self.cpu = {"build_cpu_ms": 0, "segment_cpu_ms_median": 0, "segment_cpu_ms_max": 0}
        self._segments_ms: list[int] = []

    def start(self) -> bytes:
        with self.executor.run(self.claim.build("build", self.limits)) as done:
            self.startup_flops = budget.counted_flops(done.answer.get("flops")) or 0
            self.cpu["build_cpu_ms"] = _ms(done.cpu_s or 0.0)
            return done.read("start.safetensors")

    def resume(self, data: bytes, source: str) -> None:
        pass  # the next segment starts from the checkpoint file itself

    def segment(self, i: int, k: int, start: Path, on_step: Callable | None) -> bytes:
        req = self.claim.segment(f"segment-{i:04d}", start, k, count=1, limits=self.limits)  # the work report
        with self.executor.run(req) as done:
            a = done.answer
            data = done.read("out.safetensors")
            self._segments_ms.append(_ms(done.cpu_s or 0.0))
        self.cpu.update(segment_cpu_ms_median=int(statistics.median(self._segments_ms)),
                        segment_cpu_ms_max=max(self._segments_ms))
        # the answer is the code's word: counts for the run's work report (verifiers count again)
        self.step_flops_max = max(self.step_flops_max, budget.counted_flops(a.get("step_flops_max")) or 0)
        self.counted_steps += budget.counted_flops(a.get("counted_steps")) or 0
        if on_step:  # and its own losses: shown to the trainer, never recorded as a result
            for j, loss in enumerate(reported_losses(a)[:k]):
                on_step(i * k + j + 1, loss)
        return data

    def work(self) -> dict[str, int]:
        return {"startup_flops": self.startup_flops, "step_flops_max": self.step_flops_max,
                "counted_steps": self.counted_steps}


def reported_losses(answer: dict) -> list[float]:
    """The per-step losses a worker reported (numbers only; anything else reads as NaN)."""
    raw = answer.get("losses")
    return [float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else float("nan")
            for x in (raw if isinstance(raw, list) else [])]


def isolation_of(opts: RunOptions, hidden_sources=()) -> isolation.Isolation:
    """How this run's train.py runs (``arledger.execution.isolation``)."""
    return isolation.Isolation.of(opts.sandbox, opts.limits, hidden_sources, kernels.env_for(opts.cpu_kernels)
                                  if opts.cpu_kernels else None)


def run_experiment(opts: RunOptions, on_progress: ProgressCallback | None = None, store=None,
                   train_segment: SegmentTrainer | None = None,
                   say: Callable[[str], None] = lambda _msg: None) -> RunResult:
    """Train, checkpoint, pin and evaluate; returns the validated manifest and its CID.
    ``say`` hears, before any training, whether the run starts, resumes or restarts.
    ``train_segment``: a hook that trains one segment on this process's ``Session`` (attacks
    in tests and the demo); it needs ``sandbox=False``."""
    t_start = time.perf_counter()
    if train_segment is not None and opts.sandbox:
        raise ExperimentError("train_segment: a segment hook runs in this process; use RunOptions(sandbox=False)")
    out = Path(opts.out)
    spec = read_spec(opts.experiment_dir)  # never import train.py here: it may be someone else's
    steps, k = _budget(opts, spec.default_steps, spec.default_segment_steps)
    _check_claim_fields(opts)
    kernels.ensure(opts.cpu_kernels)
    harness_src = opts.harness_dir or artifacts.harness_dir_of(opts.experiment_dir, spec)
    if not (Path(harness_src) / HARNESS_FILE).is_file():  # before anything is written to --out
        raise ExperimentError(f"{harness_src}: no {HARNESS_FILE} there (give the harness to run with: --harness DIR)")
    store = store or artifacts.open_store(opts.store_spec)
    artifacts.check_answers(store)  # before anything is written to --out
    outdir.claim(out, "artrain run", force=opts.force, legacy=RUN_FILES)
    finished_before = (out / "manifest.json").exists()
    # A re-run invalidates the old result, and with it any submission of it (arledger.submit).
    for stale in ("manifest.json", "submission.json", "claim-manifest.json"):
        (out / stale).unlink(missing_ok=True)

    code_dir = artifacts.snapshot_code(opts.experiment_dir, out / "code")
    code_cid = str(store.add_dir(code_dir))
    harness_dir = artifacts.snapshot_harness(harness_src, out / "harness")
    harness_cid = str(store.add_dir(harness_dir))
    h = load_harness(harness_dir)
    dataset_cids = artifacts.build_datasets(h, store)
    train_cids = {k: c for k, c in dataset_cids.items() if k in h.train_splits}
    train_paths = artifacts.fetch_datasets(train_cids, store, out / "data")
    heldout_paths = artifacts.fetch_datasets({k: c for k, c in dataset_cids.items() if k not in train_cids},
                                             store, out / "heldout")

    iso = isolation_of(opts, getattr(h.module, "SOURCES", ()))
    executor = isolation.executor(iso)
    if opts.sandbox:
        training = _SandboxedTraining(executor, code_dir, train_paths, opts)
    else:
        training = _InProcessTraining(code_dir, train_paths, opts, train_segment or train_segment_honestly)
    params = {
        "code_cid": code_cid, "harness_cid": harness_cid, "datasets": dataset_cids, "seed": opts.seed, "steps": steps,
        "segment_steps": k, "threads": opts.threads,
    }
    timings = {"train_ms": 0, "checkpoint_ms": 0, "pin_ms": 0, **getattr(training, "cpu", {})}
    boundaries, resumed_from = _resume(out, params, training, timings)
    if boundaries:
        say(f"resuming {out} from checkpoint {resumed_from} (step {boundaries[-1].step} of {steps})")
    elif finished_before:
        say(f"restarting {out}: the finished run there is replaced ({steps} steps in segments of {k})")
    elif (out / "progress.json").exists():
        say(f"restarting {out}: the interrupted run there had other parameters")
    else:
        say(f"starting {out}: {steps} steps in segments of {k}")

    def boundary(i: int, data: bytes) -> None:
        t0 = time.perf_counter()
        h = checkpoint.state_hash(data)
        path = ckpt_path(out, i)
        atomic_write(path, data)
        t1 = time.perf_counter()
        cid = str(store.add_file(path))
        store.pin(cid)
        t2 = time.perf_counter()
        timings["checkpoint_ms"] += _ms(t1 - t0)
        timings["pin_ms"] += _ms(t2 - t1)
        boundaries.append(mf.Boundary(index=i, step=i * k, checkpoint_cid=cid, state_hash=h))
        _write_progress(out, params, boundaries, timings)

    if not boundaries:  # fresh start: no checkpoint of an older run may survive next to this one
        for stale in (out / "checkpoints").glob("ckpt_*.safetensors"):
            stale.unlink()
        boundary(0, training.start())
        _note_cpu(timings, training)
    last = None
    for seg in range(len(boundaries) - 1, steps // k):  # segment seg: boundary seg -> seg + 1
        t0 = time.perf_counter()
        hook = (lambda s, loss, seg=seg: on_progress(s, loss, seg, steps)) if on_progress else None
        last = training.segment(seg, k, ckpt_path(out, seg), hook)
        timings["train_ms"] += _ms(time.perf_counter() - t0)
        _note_cpu(timings, training)
        boundary(seg + 1, last)
    last = last if last is not None else ckpt_path(out, steps // k).read_bytes()

    weights_path = out / "final.safetensors"
    atomic_write(weights_path, checkpoint.weights_of_checkpoint(last, "the last checkpoint"))
    final_cid = str(store.add_file(weights_path))
    store.pin(final_cid)
    t0 = time.perf_counter()
    files = RunFiles(out / "work", code_dir, harness_dir, train_paths, heldout_paths)
    result = evaluate_local(files, weights_path, opts.seed, opts.threads, executor,
                            isolation.executor(iso, "harness") if opts.sandbox else None)
    shutil.rmtree(out / "work", ignore_errors=True)
    if not result.ok:
        raise ExperimentError(f"evaluation: {result.problem}")
    metrics = result.metrics
    timings["eval_ms"] = _ms(time.perf_counter() - t0)
    metric = h.metric
    timings["total_ms"] = _ms(time.perf_counter() - t_start)
    m = mf.Manifest(
        schema_version=mf.SCHEMA_VERSION, task_id=opts.task_id, parent=opts.parent, trainer=opts.trainer,
        code_cid=code_cid, harness_cid=harness_cid, train_splits=tuple(sorted(train_cids)),
        experiment={"name": spec.name, "metric": metric},
        hypothesis=opts.hypothesis, notes=opts.notes, seed=opts.seed, steps=steps, segment_steps=k,
        datasets=dataset_cids, environment=determinism.environment(opts.threads),
        boundaries=tuple(boundaries), merkle_root=mf.compute_merkle_root(boundaries),
        final_weights_cid=final_cid,
        evaluation=mf.Evaluation(metric=metric, value_micro=to_micro(metrics[metric]),
                                 metrics_micro={n: to_micro(v) for n, v in sorted(metrics.items())}),
        timings=dict(sorted(timings.items())),
        work=_work(training, last, code_dir),
    )
    data = mf.dumps(m)
    manifest_path = out / "manifest.json"
    atomic_write(manifest_path, data)
    manifest_cid = str(store.add_bytes(data))
    store.pin(manifest_cid)
    (out / "progress.json").unlink(missing_ok=True)
    return RunResult(m, manifest_path, manifest_cid, resumed_from, timings)


def _work(training, last: bytes, code_dir: Path) -> dict[str, int]:
    """What this run counted (arledger.runner.budget): verifiers count it again when they replay.
    A resumed run counted only the segments it trained after the resume."""
    return {"params": budget.param_count(checkpoint.model_params(last)), "code_bytes": budget.code_bytes(code_dir),
            **training.work()}


def _note_cpu(timings: dict, training) -> None:
    """The request times so far, the larger of this process's and what a resumed run kept in
    progress.json (a median over the segments trained since the resume)."""
    for key, ms in getattr(training, "cpu", {}).items():
        timings[key] = max(int(timings.get(key, 0)), int(ms))


def _write_progress(out: Path, params: dict, boundaries: list, timings: dict) -> None:
    doc = {"params": params, "boundaries": [b.__dict__ for b in boundaries], "timings": timings}
    atomic_write(out / "progress.json", json.dumps(doc, sort_keys=True).encode())


def _resume(out: Path, params: dict, training, timings: dict) -> tuple[list, int | None]:
    """Boundaries already done by an interrupted run with the same parameters (else [])."""
    path = out / "progress.json"
    if not path.exists():
        return [], None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError:
        return [], None
    if doc.get("params") != params or not doc.get("boundaries"):
        return [], None  # different run: start over (old checkpoints get overwritten)
    boundaries = [mf.Boundary(**b) for b in doc["boundaries"]]
    last = boundaries[-1]
    data = ckpt_path(out, last.index).read_bytes() if ckpt_path(out, last.index).exists() else b""
    if checkpoint.state_hash(data) != last.state_hash:
        return [], None  # damaged resume point: start over rather than trust it
    training.resume(data, str(ckpt_path(out, last.index)))
    timings.update({k: int(v) for k, v in doc.get("timings", {}).items() if k in timings})
    return boundaries, last.index
