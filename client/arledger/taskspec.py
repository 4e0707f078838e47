"""The TaskSpec: what a task asks of every claim, pinned to IPFS, its digest on chain.

A sponsor builds it once (``build_taskspec``): the baseline code and the data set
are added to the store and referenced by CID, so trainers and verifiers read them
by CID only. The chain stores ``sha256(spec bytes)``; the spec is one IPFS block
(<= 256 KiB), so its CID is CIDv1(raw, sha2-256) of that digest.

``problems_with(manifest, spec)`` is the one place that says whether a run meets a
task (budget, segment length, data, metric, environment): the trainer calls it
before spending gas, the verifier before replaying anything.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from arledger import jsondoc
from arledger.jsondoc import canonical_bytes  # noqa: F401 - part of this module's API
from arledger.errors import ArledgerError, TaskSpecError
from arledger.runner.limits import Limits

SCHEMA_VERSION = 2
MAX_BYTES = jsondoc.MAX_BLOCK_BYTES
MICRO = 1_000_000


@dataclass(frozen=True)
class TaskSpec:
    schema_version: int
    name: str
    description: str
    baseline_code_cid: str
    harness: dict[str, Any]  # cid, train_splits, causal, hidden_sources (arledger.harness)
    experiment: dict[str, str]
    datasets: dict[str, str]
    evaluation: dict[str, Any]
    budget: dict[str, int]
    environment: dict[str, Any]
    verification: dict[str, Any]
    sampling: dict[str, Any]  # counts, and "suspicion": "growth" | "fused"
    limits: dict[str, int]
    min_improvement_micro: int
    baseline_loss_micro: int

    @property
    def steps(self) -> int:
        return int(self.budget["steps"])

    @property
    def segment_steps(self) -> int:
        return int(self.budget["segment_steps"])

    @property
    def segments(self) -> int:
        return self.steps // self.segment_steps

    @property
    def work_budget(self):
        """The budget as ``arledger.runner.budget.Budget`` (fields an older spec lacks: unlimited)."""
        from arledger.runner.budget import Budget

        return Budget.from_dict(self.budget)

    @property
    def cpu_kernels(self) -> str | None:
        """The kernel set every party runs with (arledger.runner.kernels); None in older specs."""
        return self.environment.get("cpu_kernels")

    @property
    def harness_cid(self) -> str:
        return str(self.harness["cid"])

    @property
    def train_splits(self) -> tuple[str, ...]:
        return tuple(self.harness["train_splits"])

    @property
    def hidden_sources(self) -> tuple[str, ...]:
        return tuple(self.harness["hidden_sources"])

    def sandbox_limits(self):
        from arledger.runner.limits import Limits

        return Limits.from_dict(self.limits, "limits")

    @property
    def mode(self) -> str:
        return str(self.verification["mode"])

    @property
    def threshold(self) -> float | None:
        return self.verification.get("threshold")

    def to_bytes(self) -> bytes:
        return canonical_bytes(asdict(self))

    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


def schema() -> dict[str, Any]:
    return jsondoc.schema("taskspec")


def validate_dict(d: Any, source: str = "taskspec") -> TaskSpec:
    problem = jsondoc.first_schema_error(d, "taskspec")
    if problem:
        raise TaskSpecError(f"{source}: {problem}")
    if d["budget"]["steps"] % d["budget"]["segment_steps"]:
        raise TaskSpecError(f"{source}: /budget/segment_steps: {d['budget']['segment_steps']} "
                            f"does not divide steps {d['budget']['steps']}")
    if d["evaluation"]["metric"] != d["experiment"]["metric"]:
        raise TaskSpecError(f"{source}: /evaluation/metric: differs from /experiment/metric")
    missing = [s for s in d["harness"]["train_splits"] if s not in d["datasets"]]
    if missing or len(d["harness"]["train_splits"]) >= len(d["datasets"]):
        raise TaskSpecError(f"{source}: /harness/train_splits: must name datasets and leave one held out")
    return TaskSpec(**d)


def loads(data: bytes, source: str = "taskspec") -> TaskSpec:
    return validate_dict(jsondoc.parse_block(data, source, TaskSpecError), source)


def fetch(store: Any, digest: bytes) -> TaskSpec:
    """The TaskSpec whose sha256 is ``digest`` (as stored on chain), verified by the store."""
    from arstore import digest_to_cid

    cid = digest_to_cid(digest)
    return loads(bytes(store.cat(cid, max_size=MAX_BYTES)), f"taskspec {cid}")


def publish(store: Any, spec: TaskSpec) -> str:
    """Add the spec's canonical bytes to the store; returns its CID."""
    data = spec.to_bytes()
    loads(data)  # a writer never publishes what a reader rejects
    return str(store.add_bytes(data))


# -- building a spec from an experiment directory ------------------------------------------

# per verifier: 1 random pick + 1 suspicious pick ranked by update growth and bump, spread across
# the claim's verifiers (arverifier.sampling; the trade-off curve in docs/verification.md)
DEFAULT_SAMPLING = {"random_segments": 1, "suspicious_segments": 1, "suspicion": "growth"}
DEFAULT_LIMITS = Limits().to_dict()


def build_taskspec(experiment_dir: Path, store: Any, *, name: str | None = None, description: str = "",
                   steps: int | None = None, segment_steps: int | None = None, threads: int = 1,
                   verification: dict | None = None, sampling: dict | None = None,
                   limits: dict | None = None, min_improvement: float = 0.001,
                   baseline_loss: float | None = None, harness_dir: Path | None = None,
                   budget: dict | None = None, cpu_kernels: str | None = None) -> TaskSpec:
    """Pin the baseline code, the harness and its data set, measure the baseline, return the spec.

    ``harness_dir`` defaults to the harness the baseline's experiment.json names.
    ``baseline_loss`` defaults to the harness's metric of the untrained baseline model
    (seed 0): the first claim must beat an honest starting point, not a number someone typed.
    ``budget``: work limits that override the ones measured on the baseline (``measure_work``).
    ``cpu_kernels``: the kernel set every party runs with [default: ``kernels.DEFAULT_PIN``];
    this process must run it (the baseline's numbers are measured here).
    """
    from arledger.runner import kernels
    from arledger.harness import load_harness
    from arledger.runner import artifacts, determinism
    from arledger.runner.experiment import load_experiment
    from arledger.runner.replay import RunFiles, evaluate_local
    from arledger.runner.session import Session

    exp = load_experiment(experiment_dir)
    pin = cpu_kernels or kernels.DEFAULT_PIN
    try:
        kernels.ensure(pin)
    except ArledgerError as exc:
        raise TaskSpecError(str(exc)) from None
    steps = steps or exp.spec.default_steps
    segment_steps = segment_steps or exp.spec.default_segment_steps or steps
    if not steps:
        raise TaskSpecError("budget.steps: give --steps or defaults.steps in experiment.json")
    try:
        lim = Limits.from_dict({**DEFAULT_LIMITS, **(limits or {})})
    except ValueError as exc:
        raise TaskSpecError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="arledger-task-") as tmp:
        code = artifacts.snapshot_code(exp, Path(tmp) / "code")
        code_cid = str(store.add_dir(code))
        hdir = artifacts.snapshot_harness(harness_dir or artifacts.harness_dir_of(exp), Path(tmp) / "harness")
        harness_cid = str(store.add_dir(hdir))
        h = load_harness(hdir)
        datasets = artifacts.build_datasets(h, store)
        train = artifacts.fetch_datasets({k: c for k, c in datasets.items() if k in h.train_splits},
                                         store, Path(tmp) / "data")
        work = measure_work(code, train, int(segment_steps), threads, budget or {})
        if baseline_loss is None:
            held = artifacts.fetch_datasets({k: c for k, c in datasets.items() if k not in h.train_splits},
                                            store, Path(tmp) / "heldout")
            weights = Path(tmp) / "baseline.safetensors"
            weights.write_bytes(Session(load_experiment(code), train, 0, threads).weights())
            result = evaluate_local(RunFiles(Path(tmp) / "work", code, hdir, train, held), weights, 0, threads)
            if not result.ok:
                raise TaskSpecError(f"baseline: {result.problem}")
            baseline_loss = result.metrics[h.metric]
    env = determinism.environment(threads)
    d = {
        "schema_version": SCHEMA_VERSION,
        "name": name or exp.spec.name,
        "description": description,
        "baseline_code_cid": code_cid,
        "harness": {"cid": harness_cid, "train_splits": sorted(h.train_splits), "causal": h.causal,
                    "hidden_sources": sorted(str(s) for s in getattr(h.module, "SOURCES", ()))},
        "experiment": {"name": exp.spec.name, "metric": h.metric},
        "datasets": datasets,
        "evaluation": {"metric": h.metric, "units": h.units, "lower_is_better": True, "scale": MICRO},
        "budget": {"steps": int(steps), "segment_steps": int(segment_steps), **work},
        "environment": {"torch": env["torch"], "device": env["device"], "threads": int(threads),
                        "deterministic": True, "cpu_kernels": pin},
        "verification": verification or {"mode": "exact"},
        "sampling": sampling or dict(DEFAULT_SAMPLING),
        "limits": lim.to_dict(),
        "min_improvement_micro": max(1, int(round(min_improvement * MICRO))),
        "baseline_loss_micro": int(round(baseline_loss * MICRO)),
    }
    return validate_dict(d)


def measure_work(code: Path, train: dict[str, Path], segment_steps: int, threads: int,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The baseline's work, counted here (the reference environment), and the budget it implies:
    FLOPs per step x ``budget.FLOPS_HEADROOM``; start-up FLOPs: the baseline's or one step's,
    whichever is more; the CPU backstop: one baseline segment's CPU time, calibrated
    (``budget.calibrate_cpu``) for the FLOP budget the task ends up with; parameters x
    ``PARAMS_HEADROOM``; the code-size default. ``overrides`` replace any of them."""
    import math
    import time

    from arledger import checkpoint
    from arledger.runner import budget as bd
    from arledger.runner.experiment import load_experiment
    from arledger.runner.session import Session

    session = Session(load_experiment(code), train, 0, threads, count_startup=True)
    session.train_steps(1, count=1)
    step_flops = max(1, session.max_step_flops)
    cpu0 = time.process_time()
    session.train_steps(segment_steps)
    segment_cpu = time.process_time() - cpu0
    params = bd.param_count(checkpoint.model_params(session.capture()))
    over = dict(overrides or {})
    flops_per_step = int(over.get("flops_per_step") or math.ceil(bd.FLOPS_HEADROOM * step_flops))
    out = {"flops_per_step": flops_per_step,
           "startup_flops": max(int(session.startup_flops or 0), flops_per_step),
           "cpu_seconds_per_segment": bd.calibrate_cpu(segment_cpu, flops_per_step / step_flops),
           "max_params": bd.PARAMS_HEADROOM * params,
           "max_code_bytes": max(bd.CODE_BYTES_DEFAULT, 2 * bd.code_bytes(code))}
    return {**out, **over}


# -- does a run meet the task? -------------------------------------------------------------


def problems_with(manifest: Any, spec: TaskSpec) -> list[str]:
    """Every way ``manifest`` (an arledger.manifest.Manifest) fails ``spec``; [] if none."""
    out = []
    if manifest.steps != spec.steps:
        out.append(f"steps: run has {manifest.steps}, task budget is {spec.steps}")
    if manifest.segment_steps != spec.segment_steps:
        out.append(f"segment_steps: run has {manifest.segment_steps}, task requires {spec.segment_steps}")
    if manifest.harness_cid != spec.harness_cid:
        out.append(f"harness: run was evaluated by {manifest.harness_cid}, task harness is {spec.harness_cid}")
    if tuple(manifest.train_splits) != spec.train_splits:
        out.append(f"train_splits: run gave train.py {list(manifest.train_splits)}, task allows {list(spec.train_splits)}")
    if dict(manifest.datasets) != dict(spec.datasets):
        out.append(f"datasets: run used {dict(manifest.datasets)}, task data is {dict(spec.datasets)}")
    if manifest.experiment.get("metric") != spec.experiment["metric"]:
        out.append(f"metric: run reports {manifest.experiment.get('metric')!r}, "
                   f"task uses {spec.experiment['metric']!r}")
    out += manifest_budget_problems(manifest, spec)
    env = manifest.environment
    for key in ("torch", "device", "threads"):
        if env.get(key) != spec.environment[key]:
            out.append(f"environment.{key}: run used {env.get(key)!r}, task requires {spec.environment[key]!r}")
    return out


def manifest_budget_problems(manifest: Any, spec: TaskSpec) -> list[str]:
    """What the run's own count of its work (``manifest.work``) says against the budget: a run
    that reports more than the task allows is refused by its trainer before any gas and
    challenged by verifiers (who count again, for themselves, when they replay)."""
    b = spec.work_budget
    work = dict(getattr(manifest, "work", {}) or {})
    out = b.static_problems(work.get("params"), work.get("code_bytes"))
    if b.flops_per_step is not None and work.get("step_flops_max", 0) > b.flops_per_step:
        out.append(f"budget.flops_per_step: a step of the run counted {work['step_flops_max']} FLOPs, "
                   f"the task allows {b.flops_per_step}")
    if b.startup_flops is not None and work.get("startup_flops", 0) > b.startup_flops:
        out.append(f"budget.startup_flops: build() counted {work['startup_flops']} FLOPs, "
                   f"the task allows {b.startup_flops}")
    return out


def kernel_problems(manifest: Any, spec: TaskSpec) -> list[str]:
    """A run trained under another kernel set than the task pins: verifiers would abstain on it
    (their replays cannot reproduce it), so its trainer refuses to submit it. Not a verifier's
    inconsistency: an honest run on another kernel set is abstained on, never challenged."""
    from arledger.runner import kernels

    if spec.cpu_kernels is None:
        return []
    have = dict(manifest.environment.get("kernels") or {})
    if have != kernels.env_for(spec.cpu_kernels):
        return [f"environment.kernels: the run was trained with {have or 'no kernel switches'}, the task pins "
                f"cpu_kernels {spec.cpu_kernels!r} (artrain run --cpu-kernels {spec.cpu_kernels})"]
    return []
