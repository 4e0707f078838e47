"""A task's baseline, measured: its work (the budget a task derives from it) and its loss.

The baseline's ``train.py`` is code like any claim's (a sponsor's template, or a
directory someone handed over), so it runs as requests through an executor, sandboxed by
default (``arledger.execution.isolation``), never in the process that holds the sponsor's
key. Its requests and one evaluation:

1. ``build`` from seed 0: checkpoint 0 and the start-up FLOPs;
2. ``time_base``: ``TIME_SAMPLES`` builds and as many whole segments, their first step
   counted (its FLOPs: a step's), each timed as the kernel accounts the request
   (``Done.cpu_s``): the same requests, the same measure a replay is held to. The
   least of each kind is the ``TimeBase`` the task's time budget is relative to, on this
   machine (``arledger.protocol.timebase`` keeps one per task and machine);
3. the harness's metric of checkpoint 0's weights: the loss the first claim must beat.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arledger import checkpoint
from arledger.errors import ExperimentError
from arledger.execution.executors import Executor
from arledger.protocol.replay import evaluate_local, RunFiles
from arledger.runner import budget as bd
from arledger.runner.worker import ClaimCode

SEED = 0  # the baseline's run: seed 0, as every task states it
TIME_SAMPLES = 5  # requests of each kind timed; the least is the time base (slow ones, a busy machine's, move nothing)


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
    time: bd.TimeBase
    params: int
    code_bytes: int
    loss: float | None  # None when not asked for


def time_base(claim: ClaimCode, segment_steps: int, executor: Executor, samples: int = TIME_SAMPLES
              ) -> tuple[bd.TimeBase, dict, Path]:
    """Time the baseline (``claim``: its code and training splits, seed 0) through ``executor``:
    ``samples`` builds and ``samples`` segments from checkpoint 0, each the request a replay is
    (the first step counted). Returns the ``TimeBase``, a segment's answer (its first step's
    FLOPs) and checkpoint 0, in a directory the caller's ``claim`` code dir's parent never holds."""
    work = Path(tempfile.mkdtemp(prefix="arledger-timebase-"))
    builds, segments, answer = [], [], {}
    ckpt0 = work / "start.safetensors"
    for i in range(samples):
        with executor.run(claim.build(f"timebase-build-{i}")) as done:
            if i == 0:
                ckpt0.write_bytes(done.read("start.safetensors"))
                answer["startup_flops"] = done.answer.get("flops")
            builds.append(done.cpu_s)
    for i in range(samples):
        with executor.run(claim.segment(f"timebase-segment-{i}", ckpt0, segment_steps, count=1)) as done:
            answer.update(done.answer if i == 0 else {})
            segments.append(done.cpu_s)
    if None in builds or None in segments:
        raise ExperimentError(f"baseline: the {type(executor).__name__} cannot measure CPU time")
    # The least of the samples: contention (the other core's work, a shared cache, an SMT sibling)
    # only ever adds CPU time to a fixed computation, so the fastest sample is the machine's own
    # speed. A median taken while the machine was busy let hidden work under the line; a base
    # on the fast side costs an honest claim at most the second look (``replay._lowest_time``),
    # which times the baseline again around each try.
    segment = min(segments)
    base = bd.TimeBase(segment_s=round(segment, 4),
                       start_s=round(min(builds) + segment / max(1, segment_steps), 4))
    return base, answer, work


def measure(req: BaselineRequest, executor: Executor, harness_executor: Executor | None = None,
            with_loss: bool = True) -> Baseline:
    """``executor`` runs the baseline's code; ``harness_executor`` the harness's steps of its
    evaluation (default: this process)."""
    claim = ClaimCode(req.code, req.train, SEED, req.threads)
    timed, answer, work = time_base(claim, req.segment_steps, executor)
    try:
        ckpt0 = work / "start.safetensors"
        params = bd.param_count(checkpoint.model_params(ckpt0.read_bytes()))
        loss = None
        if with_loss:
            weights = work / "baseline.safetensors"
            weights.write_bytes(checkpoint.weights_of_checkpoint(ckpt0.read_bytes(), "the baseline's checkpoint 0"))
            files = RunFiles(work / "eval", req.code, req.harness, req.train, req.heldout)
            result = evaluate_local(files, weights, SEED, req.threads, executor, harness_executor)
            if not result.ok:
                raise ExperimentError(f"baseline: {result.problem}")
            loss = result.metrics[req.metric]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Baseline(step_flops=max(1, bd.counted_flops(answer.get("step_flops_max")) or 0),
                    startup_flops=bd.counted_flops(answer.get("startup_flops")) or 0,
                    time=timed, params=params, code_bytes=bd.code_bytes(req.code), loss=loss)


def budget_of(b: Baseline, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The budget a task derives from its baseline: time, ``FLOPS_HEADROOM`` x the baseline's on
    each party's machine and ``TIME_SLACK_S`` more per request; FLOPs per counted step,
    ``FLOPS_CEILING`` x that ratio x the baseline's step (a first refusal far above the time
    budget, never the rule); start-up FLOPs, the
    baseline's or one step's, whichever is more; parameters x ``PARAMS_HEADROOM``; the code-size
    default. ``overrides`` replace any."""
    over = dict(overrides or {})
    ratio = float(over.get("time_ratio") or bd.FLOPS_HEADROOM)
    flops_per_step = int(over.get("flops_per_step") or math.ceil(bd.FLOPS_CEILING * ratio * b.step_flops))
    out = {"time_ratio": ratio,
           "time_slack_s": bd.TIME_SLACK_S,
           "flops_per_step": flops_per_step,
           "startup_flops": max(b.startup_flops, flops_per_step),
           "max_params": bd.PARAMS_HEADROOM * b.params,
           "max_code_bytes": max(bd.CODE_BYTES_DEFAULT, 2 * b.code_bytes)}
    return {**out, **over}
