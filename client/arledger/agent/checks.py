"""Refusing a proposal before any training: it must load, keep the interface, fit the budget,
and be a new experiment.

The checks run the proposal's ``build()`` and ONE counted training step as two requests
(``build``, then a one-step ``segment``) through the executor the agent trains with: the
sandbox (``arledger.execution.isolation``), since a proposal is built on another
trainer's code. What they count is compared with the task's budget through the same code
``artrain submit`` uses (``taskspec.manifest_budget_problems``): a proposal that passes
here is a run that submit will not refuse for its budget. This costs one step, not a
segment.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace

from arledger import checkpoint, taskspec
from arledger.agent.proposal import Proposal, ProposalContext
from arledger.errors import ExperimentError, ReplayError
from arledger.execution.executors import Executor
from arledger.protocol.run import reported_losses
from arledger.runner import budget
from arledger.runner.experiment import parse_spec
from arledger.runner.worker import ClaimCode

MAX_MESSAGE = 300  # characters of an exception kept in a refusal


def problems(p: Proposal, ctx: ProposalContext, spec, train_paths: dict[str, Path], threads: int,
             executor: Executor) -> list[str]:
    """Why ``p`` must not be trained ([] if it may): the first failing stage's reasons."""
    code = p.code
    where = ctx.recorded_as(code)
    if where:
        return [f"repeats an experiment already recorded: code {code.cid} is {where}"]
    limit = spec.work_budget.max_code_bytes
    if limit is not None and code.size > limit:
        return [f"budget.max_code_bytes: the code is {code.size} bytes, the task allows {limit}"]
    try:
        compile(code.train_py, "train.py", "exec")
    except SyntaxError as exc:
        return [f"does not load: train.py line {exc.lineno}: {exc.msg}"]
    try:
        parse_spec(code.spec, "experiment.json")
    except ExperimentError as exc:
        return [f"does not load: {exc}"]
    with tempfile.TemporaryDirectory(prefix="arledger-check-") as tmp:
        directory = code.write(Path(tmp) / "code")

        claim = ClaimCode(directory, train_paths, ctx.seed, threads)  # the executor's limits: the task's
        try:
            with executor.run(claim.build("check-build")) as done:
                startup_flops = budget.counted_flops(done.answer.get("flops")) or 0
                start = Path(tmp) / "start.safetensors"
                start.write_bytes(done.read("start.safetensors"))
            with executor.run(claim.segment("check-step", start, 1, count=1)) as done:
                losses = reported_losses(done.answer)
                step_flops = budget.counted_flops(done.answer.get("step_flops_max")) or 0
                params = budget.param_count(checkpoint.model_params(done.read("out.safetensors")))
        except (ReplayError, OSError, ExperimentError) as exc:
            return [_refusal(exc)]
        except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint the proposal wrote
            return [f"breaks the interface: {type(exc).__name__}: {_short(str(exc))}"]
        loss = float(losses[0]) if losses else math.nan
        if not math.isfinite(loss):
            return [f"breaks the interface: the first training step returned a loss of {loss}"]
        work = {"params": params, "code_bytes": budget.code_bytes(directory), "startup_flops": startup_flops,
                "step_flops_max": step_flops}
    over = taskspec.manifest_budget_problems(SimpleNamespace(work=work), spec)
    return [f"exceeds the budget: {x}" for x in over]


def _refusal(exc: Exception) -> str:
    """The worker's error as the proposer should read it: the stage, without sandbox paths."""
    text = re.sub(r"\S*/code/", "", str(exc))  # the request dir means nothing to the reader
    text = re.sub(r"^worker: ", "", text)
    if "import failed" in text:
        return f"does not load: {_short(re.sub(r'^ExperimentError: ', '', text))}"
    return f"breaks the interface: {_short(text)}"


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"
