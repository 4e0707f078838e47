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

import copy
import functools
import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from arledger import jsondoc
from arledger.errors import ArledgerError, ExperimentError, ReplayError, TaskSpecError
from arledger.execution import isolation, kernels
from arledger.execution.limits import Limits
from arledger.harness import load_harness
from arledger.jsondoc import canonical_bytes  # noqa: F401 - part of this module's API
from arledger.micro import MICRO, to_micro
from arledger.protocol import artifacts, baseline, timebase
from arledger.runner import determinism
from arledger.runner.budget import Budget
from arledger.runner.experiment import read_spec
from arstore import digest_to_cid

SCHEMA_VERSION = 2
MAX_BYTES = jsondoc.MAX_BLOCK_BYTES


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
        return Budget.from_dict(self.budget)

    @property
    def cpu_kernels(self) -> str | None:
        """The kernel set every party runs with (arledger.execution.kernels); None in older specs."""
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


@functools.lru_cache(maxsize=None)
def schema() -> dict[str, Any]:
    """The TaskSpec's JSON schema: the file, with ``limits`` from ``Limits`` (one definition)."""
    doc = copy.deepcopy(jsondoc.schema_file("taskspec"))
    doc["properties"]["limits"] = Limits.json_schema()
    return doc


def validate_dict(d: Any, source: str = "taskspec") -> TaskSpec:
    problem = jsondoc.first_schema_error(d, schema())
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


@dataclass(frozen=True)
class SpecRequest:
    """What a task's spec is built from (``build_taskspec``); ``arledger.tasks.TaskRequest`` adds
    the on-chain terms. ``harness_dir`` defaults to the harness the baseline's experiment.json
    names; ``baseline_loss`` to the harness's metric of the untrained baseline model (seed 0);
    ``budget``: work limits over the ones measured on the baseline; ``cpu_kernels``: the kernel
    set every party runs with [default: ``kernels.DEFAULT_PIN``]; ``time_home``: where this
    machine's timing of the baseline is kept for the parties on it (``protocol.timebase``; the
    CLI: $ARLEDGER_HOME) [default: not kept]."""

    experiment_dir: Path
    name: str | None = None
    description: str = ""
    steps: int | None = None
    segment_steps: int | None = None
    threads: int = 1
    verification: dict | None = None
    sampling: dict | None = None
    limits: dict | None = None
    min_improvement: float = 0.001
    baseline_loss: float | None = None
    harness_dir: Path | None = None
    budget: dict | None = None
    cpu_kernels: str | None = None
    time_home: Path | None = None


def build_taskspec(req: SpecRequest, store: Any) -> TaskSpec:
    """Pin the baseline code, the harness and its data set, measure the baseline (its code in the
    sandbox: ``arledger.protocol.baseline``), return the spec. The first claim must beat an honest
    starting point, not a number someone typed. This process must run the kernel set the spec
    pins (the baseline's numbers are measured under it)."""
    directory = Path(req.experiment_dir)
    steps, segment_steps, baseline_loss = req.steps, req.segment_steps, req.baseline_loss
    exp_spec = read_spec(directory)  # only experiment.json: train.py runs in the sandbox, never here
    pin = req.cpu_kernels or kernels.DEFAULT_PIN
    try:
        kernels.ensure(pin)
    except ArledgerError as exc:
        raise TaskSpecError(str(exc)) from None
    steps = steps or exp_spec.default_steps
    segment_steps = segment_steps or exp_spec.default_segment_steps or steps
    if not steps:
        raise TaskSpecError("budget.steps: give --steps or defaults.steps in experiment.json")
    try:
        lim = Limits.from_dict({**DEFAULT_LIMITS, **(req.limits or {})})
    except ValueError as exc:
        raise TaskSpecError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="arledger-task-") as tmp:
        code = artifacts.snapshot_code(directory, Path(tmp) / "code")
        code_cid = str(store.add_dir(code))
        hdir = artifacts.snapshot_harness(req.harness_dir or artifacts.harness_dir_of(directory, exp_spec),
                                          Path(tmp) / "harness")
        harness_cid = str(store.add_dir(hdir))
        h = load_harness(hdir)
        datasets = artifacts.build_datasets(h, store)
        train = artifacts.fetch_datasets({k: c for k, c in datasets.items() if k in h.train_splits},
                                         store, Path(tmp) / "data")
        held = artifacts.fetch_datasets({k: c for k, c in datasets.items() if k not in h.train_splits},
                                        store, Path(tmp) / "heldout")
        hidden = sorted(str(s) for s in getattr(h.module, "SOURCES", ()))
        iso = isolation.Isolation.of(True, lim, hidden, kernels.env_for(pin))
        what = baseline.BaselineRequest(code, hdir, train, held, int(segment_steps), req.threads, h.metric)
        claim_executor = isolation.executor(iso)
        try:
            measured = baseline.measure(what, claim_executor, isolation.executor(iso, "harness"),
                                        with_loss=baseline_loss is None)
        except (ExperimentError, ReplayError) as exc:
            raise TaskSpecError(f"baseline: {exc}") from None
        work = baseline.budget_of(measured, req.budget)
        baseline_loss = measured.loss if baseline_loss is None else baseline_loss
    env = determinism.environment(req.threads)
    d = {
        "schema_version": SCHEMA_VERSION,
        "name": req.name or exp_spec.name,
        "description": req.description,
        "baseline_code_cid": code_cid,
        "harness": {"cid": harness_cid, "train_splits": sorted(h.train_splits), "causal": h.causal,
                    "hidden_sources": sorted(str(s) for s in getattr(h.module, "SOURCES", ()))},
        "experiment": {"name": exp_spec.name, "metric": h.metric},
        "datasets": datasets,
        "evaluation": {"metric": h.metric, "units": h.units, "lower_is_better": True, "scale": MICRO},
        "budget": {"steps": int(steps), "segment_steps": int(segment_steps), **work},
        "environment": {"torch": env["torch"], "device": env["device"], "threads": int(req.threads),
                        "deterministic": True, "cpu_kernels": pin},
        "verification": req.verification or {"mode": "exact"},
        "sampling": req.sampling or dict(DEFAULT_SAMPLING),
        "limits": lim.to_dict(),
        "min_improvement_micro": max(1, to_micro(req.min_improvement)),
        "baseline_loss_micro": to_micro(baseline_loss),
    }
    spec = validate_dict(d)
    if req.time_home is not None:  # the creator timed the baseline here: parties on this machine need not again
        timebase.remember(spec, measured.time, req.time_home, claim_executor)
    return spec


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


def time_problems(manifest: Any, spec: TaskSpec, base: Any) -> list[str]:
    """What the run's own timings (the kernel's account of its sandboxed requests, recorded by
    ``artrain run``) say against the task's time budget, relative to ``base`` (the task's
    baseline timed on this machine: ``arledger.protocol.timebase``). A run trained outside the
    sandbox recorded none: nothing to say. The typical segment is held to the line (verifiers
    time the ones they replay, and time again one over it)."""
    b, t = spec.work_budget, dict(getattr(manifest, "timings", {}) or {})
    if base is None or b.time_ratio is None or not t.get("segment_cpu_ms_median"):
        return []
    out = []
    for key, base_s, what in (("segment_cpu_ms_median", base.segment_s, "a typical segment of the run"),
                              ("build_cpu_ms", base.start_s, "build()")):
        problem = b.time_problem(int(t.get(key, 0)) / 1000, base_s, what)
        if problem:
            out.append("budget.time_ratio: " + problem.removeprefix("compute budget: "))
    return out


def kernel_problems(manifest: Any, spec: TaskSpec) -> list[str]:
    """A run trained under another kernel set than the task pins: verifiers would abstain on it
    (their replays cannot reproduce it), so its trainer refuses to submit it. Not a verifier's
    inconsistency: an honest run on another kernel set is abstained on, never challenged."""
    if spec.cpu_kernels is None:
        return []
    have = dict(manifest.environment.get("kernels") or {})
    if have != kernels.env_for(spec.cpu_kernels):
        return [f"environment.kernels: the run was trained with {have or 'no kernel switches'}, the task pins "
                f"cpu_kernels {spec.cpu_kernels!r} (artrain run --cpu-kernels {spec.cpu_kernels})"]
    return []
