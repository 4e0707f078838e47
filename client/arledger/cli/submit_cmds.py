"""`artrain submit` and `artrain report`: publish a finished run, staked (commit, reveal) or not.

``arledger.submit`` imports torch (2 s): each command imports it when it runs, so their
``--help`` answers at once (tests/test_cli_start.py holds every command's help light).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from arledger import manifest as mf, queries
from arledger.chain.units import format_amount, loss_fields
from arledger.cli.common import amount, chain_options, context_from, emit, json_option, open_store, store_option


@click.command("submit")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True, help="Task id.")
@click.option("--parent", "parent_id", type=click.IntRange(min=0), help="Claim this improves on [default: current best].")
@click.option("--stake", callback=amount, help="Stake [default: the task's minimum].")
@click.option("--abandon", is_flag=True, help="Forget this run dir's unrevealed submission (to start over).")
@click.option("--wait", is_flag=True, help="Sealed task: stay until the round's shard is open, then reveal the loss.")
@store_option
@chain_options
@json_option
def submit(run_dir, task_id, parent_id, stake, abandon, wait, store_spec, as_json, **chain):
    """Pin a finished run's artifacts, commit, wait a block, reveal. Safe to re-run after a crash.

    Refuses, before any gas is spent, a run that does not meet the task (steps, segment
    length, data, environment, budget), a parent that is not a claim of the task, and a
    stake below the task's minimum or above the balance; warns when the loss cannot
    beat the best by the task's epsilon, or another claim on the same parent is pending.
    A reveal that fails leaves the saved commit: fix the cause and run the same command
    again, or pass --abandon to start over.

    On a sealed task the reveal fixes the claim in the current round without a loss; run
    the same command again once the round's shard is open (or pass --wait) and it scores
    the run's weights and the best claim's on that shard, sandboxed, and reveals both.

    \b
    Examples:
      artrain submit runs/a --task 1 --dev-account 1
      artrain submit runs/a --task 1 --stake 0.2eth --json
      artrain submit runs/a --task 1 --abandon          # forget an unrevealed submission
      artrain submit runs/a --task 2 --wait             # sealed: reveal, wait for the shard, score
    """
    from arledger.submit import abandon_submission, submit_run  # lazy: torch, not for --help

    ctx = context_from(chain)
    if abandon:
        data = abandon_submission(ctx.ledger, run_dir, task_id)
        emit(data, as_json, lambda d: [f"abandoned the submission saved in {run_dir}" + (
            f"; its commitment {d['commitment']} stays on chain unrevealed (nothing was staked)"
            if d["committed"] else "")])
        return
    warn = lambda msg: click.echo(f"warning: {msg}", err=True)  # noqa: E731
    with _pin_progress(run_dir, quiet=as_json) as progress:
        s = submit_run(ctx.ledger, open_store(store_spec), run_dir, task_id, parent_id=parent_id, stake=stake,
                       progress=progress, warn=warn, wait=wait)
    d = s.to_dict()
    d.update(loss_fields("claimed_loss", s.claimed_loss))
    # a resumed submission can be an old claim: nothing expires unseen (queries.expiry_warning)
    d["expiry_warning"] = queries.claim_status(ctx.ledger, s.claim_id)["expiry_warning"] if s.resumed else None
    emit(d, as_json, lambda d: [
        f"claim {d['claim_id']} revealed on task {d['task_id']} ("
        + (f"loss {d['claimed_loss']:.6f}, " if not d["sealed"] else f"sealed round {d['sealed']['round']}, ")
        + f"stake {format_amount(d['stake'])}){' [resumed]' if d['resumed'] else ''}",
        f"manifest {d['manifest_cid']} (the claim's: the run's manifest with this task, parent and trainer in it, "
        "so its CID differs from the one `artrain run` printed)",
        f"commit {d['commit_tx']}  reveal {d['reveal_tx']}  gas " +
        ", ".join(f"{k} {v}" for k, v in sorted(d["gas"].items()))] + _submitted_seal(d["sealed"], task_id, run_dir)
        + ([f"warning: {d['expiry_warning']}"] if d["expiry_warning"] else []))


def _submitted_seal(s: dict | None, task_id: int, run_dir: Path) -> list[str]:
    if not s:
        return []
    own = f"your estimate on the public split: {s['dev_loss']:.6f}"
    if s["stage"] == "scored":
        inc = f"claim {s['incumbent_id']}" if s["incumbent_id"] else "the baseline"
        return [f"scored on round {s['round']}'s shard: {s['claimed_loss']:.6f} against {inc}'s "
                f"{s['incumbent_loss']:.6f} ({own})"]
    if s["stage"] == "waiting":
        return [f"waiting for round {s['round']}'s shard (the round ends at chain time {s['round_ends_at']}); "
                f"then run `artrain submit {run_dir} --task {task_id}` again, or pass --wait ({own})"]
    return [f"round {s['round']}: the claim can no longer be scored ({s.get('state')})"]


@contextmanager
def _pin_progress(run_dir: Path, quiet: bool):
    """A progress bar over what submit pins (code, each checkpoint, weights, manifest), then
    the commit and reveal: shown from the first of them (a refusal before any work prints
    only its error); silent for --json."""
    if quiet:
        yield lambda msg: None
        return


    try:  # code, each checkpoint, weights, manifest, commit, reveal
        total = len(mf.load(run_dir / "manifest.json").boundaries) + 5
    except Exception:  # submit_run reports a bad manifest itself
        total = None
    bar = Progress(TextColumn("[bold]submit"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[what]}"),
                   console=Console(stderr=True))
    task = None

    def step(msg: str) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("submit", total=total, what="")
        bar.update(task, advance=1, what=msg[:60])

    try:
        yield step
        if task is not None:  # a resumed submission skips steps: the bar still ends full
            bar.update(task, completed=total, what="done")
    finally:
        if task is not None:
            bar.stop()


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True)
@click.option("--note", default="", help="What was tried and what happened (at most 2048 bytes; "
              "default: the run's notes or hypothesis).")
@store_option
@chain_options
@json_option
def report(run_dir, task_id, note, store_spec, as_json, **chain):
    """Publish an unstaked experiment report (failed or non-improving runs belong in the record too).

    \b
    Example:
      artrain report runs/failed --task 1 --note "lr 3e-2 diverged after 150 steps"
    """
    from arledger.submit import report_run  # lazy: torch, not for --help

    ctx = context_from(chain)
    rep = report_run(ctx.ledger, open_store(store_spec), run_dir, task_id, note)
    emit({"task_id": task_id, "manifest_cid": rep["manifest_cid"], **loss_fields("loss", rep["loss_micro"]),
          "tx": rep["tx"], "gas": rep["gas"]}, as_json,
         lambda d: [f"report published on task {task_id}: loss {d['loss']:.6f} manifest {d['manifest_cid']} "
                     f"(tx {d['tx']}, gas {d['gas']})"])
