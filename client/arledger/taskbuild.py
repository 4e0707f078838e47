"""Building a task's spec: pin the baseline code, the harness and its data, measure the
baseline in the sandbox, write the ``TaskSpec`` (``arledger.taskspec`` is the document,
read by everyone; this is the sponsor's one-time work, and the only part that trains).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arledger.errors import ArledgerError, ExperimentError, ReplayError, TaskSpecError
from arledger.execution import isolation, kernels
from arledger.execution.limits import Limits
from arledger.harness import load_harness
from arledger.micro import MICRO, to_micro
from arledger.protocol import artifacts, baseline, timebase
from arledger.runner import determinism
from arledger.runner.experiment import read_spec
from arledger.taskspec import DEFAULT_SAMPLING, SCHEMA_VERSION, TaskSpec, validate_dict

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
