"""Refusing a proposal before any training: it must load, keep the interface, fit the budget,
and be a new experiment.

The checks run the proposal's ``build()`` and ONE counted training step, the way the
runner will (``arledger.runner.session.Session`` with start-up counting), and compare
what they count with the task's budget through the same code ``artrain submit`` uses
(``taskspec.manifest_budget_problems``): a proposal that passes here is a run that
submit will not refuse for its budget. This costs one step, not a segment.

They run in the agent's own process, as training will: the agent trusts its proposer as
a trainer trusts the train.py it runs (docs/agent.md says how to contain an LLM's code).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

from arledger.agent.proposal import Proposal, ProposalContext
from arledger.errors import ArledgerError, ExperimentError

MAX_MESSAGE = 300  # characters of an exception kept in a refusal


def problems(p: Proposal, ctx: ProposalContext, spec, train_paths: dict[str, Path], threads: int) -> list[str]:
    """Why ``p`` must not be trained ([] if it may): the first failing stage's reasons."""
    from arledger import taskspec
    from arledger.runner.experiment import load_experiment, parse_spec
    from arledger.runner.session import Session

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

        def short(exc: Exception) -> str:  # the temporary path means nothing to the reader
            return _short(exc).replace(str(directory) + "/", "")

        try:
            exp = load_experiment(directory)
        except ExperimentError as exc:
            stage = "breaks the interface" if "missing function" in str(exc) else "does not load"
            return [f"{stage}: {short(exc)}"]
        try:
            session = Session(exp, train_paths, ctx.seed, threads, count_startup=True)
            loss = session.train_steps(1, count=1)
        except ArledgerError as exc:
            return [f"breaks the interface: {short(exc)}"]
        except Exception as exc:  # whatever the proposal's build/batch/train_step raised
            return [f"breaks the interface: {type(exc).__name__}: {short(exc)}"]
        if not math.isfinite(loss):
            return [f"breaks the interface: the first training step returned a loss of {loss}"]
        from arledger import checkpoint
        from arledger.runner import budget

        work = {"params": budget.param_count(checkpoint.model_params(session.capture())),
                "code_bytes": budget.code_bytes(Path(tmp) / "code"),
                "startup_flops": int(session.startup_flops or 0), "step_flops_max": int(session.max_step_flops)}
    over = taskspec.manifest_budget_problems(SimpleNamespace(work=work), spec)
    return [f"exceeds the budget: {x}" for x in over]


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"
