"""A task's baseline, measured: its work (the budget a task derives from it) and its loss.

The baseline's ``train.py`` is code like any claim's (a sponsor's template, or a
directory someone handed over), so it runs as requests through an executor, sandboxed by
default (``arledger.execution.isolation``), never in the process that holds the sponsor's
key. Three requests and one evaluation:

1. ``build`` from seed 0: checkpoint 0 and the start-up FLOPs;
2. one counted step: the FLOPs of a step;
3. a whole segment: its CPU time as the kernel accounts the request (``Done.cpu_s``),
   the same measure a verifier's replay of a segment is held to;
4. the harness's metric of checkpoint 0's weights: the loss the first claim must beat.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arledger import checkpoint
from arledger.errors import ExperimentError
from arledger.execution.executors import Executor, WorkRequest
from arledger.protocol.replay import evaluate_local, RunFiles
from arledger.runner import budget as bd
from arledger.runner.worker import ClaimCode

SEED = 0  # the baseline's run: seed 0, as every task states it


@dataclass(frozen=True)
class BaselineRequest:
    """What to measure: the pinned code and harness, the task's data, one segment's length."""

    code: Path
    harness: Path
    train: dict[str, Path]
    heldout: dict[str, Path]
    segment_steps: int
    threads: int
    metric: str


@dataclass(frozen=True)
class Baseline:
    step_flops: int
    startup_flops: int
    segment_cpu_s: float
    params: int
    code_bytes: int
    loss: float | None  # None when not asked for


def measure(req: BaselineRequest, executor: Executor, harness_executor: Executor | None = None,
            with_loss: bool = True) -> Baseline:
    """``executor`` runs the baseline's code; ``harness_executor`` the harness's steps of its
    evaluation (default: this process)."""
    with tempfile.TemporaryDirectory(prefix="arledger-baseline-") as tmp:
        work = Path(tmp)

        claim = ClaimCode(req.code, req.train, SEED, req.threads)

        def run(request: WorkRequest, output: str) -> tuple[dict, Path, float | None]:
            with executor.run(request) as done:
                out = work / f"{request.label}.safetensors"
                out.write_bytes(done.read(output))
                return done.answer, out, done.cpu_s

        a0, ckpt0, _ = run(claim.build("baseline-build"), "start.safetensors")
        a1, ckpt1, _ = run(claim.segment("baseline-step", ckpt0, 1, count=1), "out.safetensors")
        _, _, segment_cpu = run(claim.segment("baseline-segment", ckpt1, req.segment_steps, count=0), "out.safetensors")
        if segment_cpu is None:
            raise ExperimentError(f"baseline: the {type(executor).__name__} cannot measure CPU time")
        params = bd.param_count(checkpoint.model_params(ckpt1.read_bytes()))
        loss = None
        if with_loss:
            weights = work / "baseline.safetensors"
            weights.write_bytes(checkpoint.weights_of_checkpoint(ckpt0.read_bytes(), "the baseline's checkpoint 0"))
            files = RunFiles(work / "eval", req.code, req.harness, req.train, req.heldout)
            result = evaluate_local(files, weights, SEED, req.threads, executor, harness_executor)
            if not result.ok:
                raise ExperimentError(f"baseline: {result.problem}")
            loss = result.metrics[req.metric]
    return Baseline(step_flops=max(1, bd.counted_flops(a1.get("step_flops_max")) or 0),
                    startup_flops=bd.counted_flops(a0.get("flops")) or 0,
                    segment_cpu_s=float(segment_cpu), params=params, code_bytes=bd.code_bytes(req.code), loss=loss)


def budget_of(b: Baseline, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The budget a task derives from its baseline: FLOPs per step x ``FLOPS_HEADROOM``; start-up
    FLOPs: the baseline's or one step's, whichever is more; the CPU backstop: one baseline
    segment's CPU, calibrated (``budget.calibrate_cpu``) for the FLOP budget the task ends up
    with; parameters x ``PARAMS_HEADROOM``; the code-size default. ``overrides`` replace any."""
    over = dict(overrides or {})
    flops_per_step = int(over.get("flops_per_step") or math.ceil(bd.FLOPS_HEADROOM * b.step_flops))
    out = {"flops_per_step": flops_per_step,
           "startup_flops": max(b.startup_flops, flops_per_step),
           "cpu_seconds_per_segment": bd.calibrate_cpu(b.segment_cpu_s, flops_per_step / b.step_flops),
           "max_params": bd.PARAMS_HEADROOM * b.params,
           "max_code_bytes": max(bd.CODE_BYTES_DEFAULT, 2 * b.code_bytes)}
    return {**out, **over}
