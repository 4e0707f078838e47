"""`artrain agent`: a thin click layer over arledger.agent (the research loop).

The loop imports torch and the LLM proposer openai (3 s together): the command imports
them when it runs, so ``artrain agent --help`` answers at once (tests/test_cli_start.py).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from arledger.chain.deployment import arledger_home
from arledger.chain.units import loss_fields
from arledger.cli.common import (
    amount,
    chain_options,
    context_from,
    json_option,
    open_store,
    say_isolation,
    store_option,
)
from arledger.execution import kernels

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h`` -> seconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m or 2h", param_hint="--until")
    return float(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2] or "s"]


@click.command("agent")
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True, help="The task to improve.")
@click.option("--proposer", type=click.Choice(["search", "llm"]), default="search", show_default=True,
              help="search: offline hyper-parameter and code mutations; llm: a chat-completions endpoint.")
@click.option("--iterations", type=click.IntRange(min=1), help="Iterations to run [default: 1].")
@click.option("--until", "until", help="Run until this much time has passed (90s, 30m, 2h) instead.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds the search proposer and the runs: same seed, account and history, same proposals.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Notebook, iterations and caches [default: $ARLEDGER_HOME/agents/task-N-0xACCOUNT].")
@click.option("--stake", callback=amount, help="Stake per claim (1eth, 0.1eth, wei) [default: the task's minimum].")
@click.option("--max-tries", type=click.IntRange(min=1), default=8, show_default=True,
              help="Proposals checked per iteration before it ends as refused.")
@click.option("--llm-url", envvar="ARLEDGER_LLM_URL", help="Chat-completions base URL, e.g. http://127.0.0.1:8000/v1 "
              "[env ARLEDGER_LLM_URL].")
@click.option("--llm-model", envvar="ARLEDGER_LLM_MODEL", help="Model name [env ARLEDGER_LLM_MODEL].")
@click.option("--llm-key", envvar="ARLEDGER_LLM_KEY", help="API key (prefer the env var ARLEDGER_LLM_KEY).")
@click.option("--llm-timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
              help="Seconds to wait for a reply.")
@click.option("--brief", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The brief sent to the model [default: arledger/agent/brief.md].")
@store_option
@chain_options
@json_option
def agent(task_id, proposer, iterations, until, seed, workdir, stake, max_tries, llm_url, llm_model, llm_key,
          llm_timeout, brief, store_spec, as_json, **chain):
    """Run the research loop on a task: read the best claim and the history, propose a change,
    refuse it before training if it does not load, breaks the interface, exceeds the budget or
    repeats a recorded experiment, train it under the task's budget, then submit it if it beats
    the best by the task's epsilon, or publish an unstaked report if not. Every iteration goes
    into the lab notebook (WORKDIR/NOTEBOOK.md). Killed at any point, the same command finishes
    the interrupted iteration first: no second commit, no lost report.

    \b
    Examples:
      artrain agent --task 1 --dev-account 1 --iterations 5
      artrain agent --task 1 --dev-account 2 --seed 7 --until 30m --json
      ARLEDGER_LLM_URL=http://127.0.0.1:8000/v1 ARLEDGER_LLM_MODEL=qwen \\
        artrain agent --task 1 --dev-account 3 --proposer llm --iterations 3
    """
    if iterations and until:
        raise click.UsageError("give --iterations or --until, not both")
    deadline = time.monotonic() + parse_duration(until) if until else None
    if proposer == "llm" and not (llm_url and llm_model):
        raise click.UsageError("--proposer llm needs --llm-url and --llm-model (or ARLEDGER_LLM_URL, ARLEDGER_LLM_MODEL)")
    from arledger.agent import Agent, AgentConfig  # lazy: torch, not for --help

    ctx = context_from(chain)
    store = open_store(store_spec)
    if workdir is None:
        workdir = arledger_home() / "agents" / f"task-{task_id}-{ctx.address.lower()}"
    cfg = AgentConfig(task_id=task_id, workdir=workdir, proposer=_proposer(proposer, seed, llm_url, llm_model,
                                                                            llm_key, llm_timeout, brief),
                      seed=seed, max_tries=max_tries, stake=stake)
    with _Display(as_json) as display:
        a = Agent(ctx.ledger, store, cfg, on_progress=display.progress, say=display.say)
        kernels.ensure(a.spec.cpu_kernels, reexec=True)  # the task's kernel set, before any training
        say_isolation()  # the code it checks and trains is another trainer's: sandboxed, and says how
        results = []
        for r in a.run(iterations=None if deadline else (iterations or 1), until=deadline):
            results.append(r)
            display.iteration(r)
    best_id, best = ctx.ledger.best_claim(task_id)

    final = {"kind": "result", "task_id": task_id, "agent": ctx.address, "workdir": str(workdir),
             "iterations": len(results), "claims": [r.claim_id for r in results if r.outcome == "claim"],
             "reports": sum(r.outcome == "report" for r in results),
             "best_claim_id": best_id, **loss_fields("best_loss", best),
             "notebook": str(Path(workdir) / "NOTEBOOK.md")}
    if as_json:
        click.echo(json.dumps(final, sort_keys=True))
    else:
        best_text = f"claim {best_id}" if best_id else "the baseline (no claim accepted yet)"
        click.echo(f"{len(results)} iteration(s): {len(final['claims'])} claim(s), {final['reports']} report(s); "
                   f"best on chain: {best_text} ({final['best_loss']:.6f}); notebook {final['notebook']}")


def _proposer(kind, seed, url, model, key, timeout, brief):
    if kind == "search":
        from arledger.agent.search import SearchProposer  # lazy: torch, not for --help

        return SearchProposer(seed)
    from arledger.agent.llm import BRIEF, LLMProposer, LLMSettings  # lazy: openai, not for --help

    return LLMProposer(LLMSettings(base_url=url, model=model, api_key=key or "none", timeout=timeout,
                                   brief=brief or BRIEF))


class _Display:
    """One summary line per iteration (or one JSON object); a progress bar while training."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.as_json:
            self._bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def progress(self, step: int, loss: float, segment: int, total: int) -> None:
        if self._bar is None:
            return
        if self._task is None:
            self._task = self._bar.add_task("train", total=total, loss="-")
        self._bar.update(self._task, completed=step, total=total, loss=f"{loss:.4f}")

    def say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, highlight=False, markup=False, soft_wrap=True)
        else:
            click.echo(json.dumps({"kind": "note", "message": line}), err=True)

    def iteration(self, r) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None
        if self.as_json:
            click.echo(json.dumps({"kind": "iteration", **r.to_dict()}, sort_keys=True))
        else:
            self._bar.console.print(r.summary(), highlight=False, markup=False, soft_wrap=True)
