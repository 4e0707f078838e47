"""The TaskSpec: what a task asks of every claim, pinned to IPFS, its digest on chain.

A sponsor builds it once (``arledger.taskbuild``): the baseline code and the data set
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
from dataclasses import asdict, dataclass
from typing import Any

from arledger import jsondoc
from arledger.errors import TaskSpecError
from arledger.execution import kernels
from arledger.execution.limits import Limits
from arledger.jsondoc import canonical_bytes  # noqa: F401 - part of this module's API
from arledger.runner.budget import Budget
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
