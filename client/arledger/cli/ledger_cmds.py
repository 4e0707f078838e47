"""Trainer commands that talk to the ledger: task, submit, best, status, claims, report, withdraw."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from arledger import manifest as mf, queries, tasks, taskspec
from arledger.chain.source import PROJECT_ROOT, verify_source, VerifyRequest
from arledger.chain.units import format_amount, loss_fields
from arledger.cli.common import (
    amount,
    chain_options,
    context_from,
    emit,
    json_option,
    open_store,
    say_isolation,
    store_option,
)
from arledger.errors import SourceMismatch
from arledger.execution import kernels
from arledger.submit import abandon_submission, report_run, submit_run

# -- task ------------------------------------------------------------------------------------


@click.group("task")
def task() -> None:
    """Create and inspect tasks (the sponsor's side)."""


@task.command("create")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Task request JSON (example: examples/task-charlm.json); flags below override it.")
@click.option("--template", help="Template name or experiment dir, when no --spec is given (charlm, digits).")
@click.option("--reward", callback=amount, help="Reward per accepted improvement, e.g. 1eth.")
@click.option("--pool", callback=amount, help="Initial reward pool sent with the transaction.")
@click.option("--steps", type=click.IntRange(min=1), help="Budget in optimizer steps.")
@click.option("--segment-steps", type=click.IntRange(min=1), help="Segment length in steps.")
@click.option("--quorum", type=click.IntRange(1, 16), help="Confirmations needed.")
@click.option("--challenge-window", type=click.IntRange(min=1), help="Seconds after reveal for confirm/challenge.")
@click.option("--voting-window", type=click.IntRange(min=1), help="Seconds a dispute is open for votes.")
@store_option
@chain_options
@json_option
def task_create(spec_file, template, reward, pool, steps, segment_steps, quorum, challenge_window,
                voting_window, store_spec, as_json, **chain):
    """Build and pin the data set and TaskSpec, then create the task on chain; prints its id.

    \b
    Examples:
      artrain task create --template charlm --reward 1eth --pool 3eth --dev-account 0
      artrain task create --spec task.json --json
    """
    if spec_file:
        req = tasks.load_request(spec_file)
    elif template:
        req = tasks.TaskRequest(experiment_dir=tasks.experiment_dir_of(template))
    else:
        raise click.UsageError("give --spec FILE or --template NAME")
    req = tasks.with_overrides(req, reward=reward, pool=pool, quorum=quorum, challenge_window=challenge_window,
                               voting_window=voting_window, steps=steps, segment_steps=segment_steps)

    kernels.ensure(req.cpu_kernels or kernels.DEFAULT_PIN, reexec=True)  # the baseline is measured under it
    say_isolation()  # the baseline's train.py runs sandboxed
    ctx = context_from(chain)
    task_id, spec, spec_cid, tx = tasks.create_task(ctx.ledger, open_store(store_spec), req)
    data = {"task_id": task_id, "spec_cid": spec_cid, "tx": tx.tx_hash, "gas": tx.gas_used,
            **loss_fields("baseline_loss", spec.baseline_loss_micro), "metric": spec.evaluation["metric"],
            "steps": spec.steps, "segment_steps": spec.segment_steps, "datasets": spec.datasets,
            "baseline_code_cid": spec.baseline_code_cid, "budget": dict(spec.budget),
            "cpu_kernels": spec.cpu_kernels}
    emit(data, as_json, lambda d: [f"task {d['task_id']} created (tx {d['tx']}, gas {d['gas']})",
                                    f"spec {d['spec_cid']}  baseline {d['metric']} = {d['baseline_loss']:.4f}",
                                    f"budget {d['steps']} steps in segments of {d['segment_steps']}; per step "
                                    f"{d['budget'].get('flops_per_step', '-')} FLOPs, CPU backstop "
                                    f"{d['budget'].get('cpu_seconds_per_segment', '-')} s per segment; "
                                    f"kernels {d['cpu_kernels']}"])


@task.command("show")
@click.argument("task_id", type=click.IntRange(min=1))
@store_option
@chain_options
@json_option
def task_show(task_id, store_spec, as_json, **chain):
    """A task's terms, pool, best claim and TaskSpec.

    \b
    Examples:
      artrain task show 1
      artrain task show 1 --json | jq .spec.budget
    """
    ctx = context_from(chain, need_account=False)
    t = ctx.ledger.task(task_id)
    spec = taskspec.fetch(open_store(store_spec), t.spec_digest)
    data = {**asdict(t), "spec_digest": "0x" + t.spec_digest.hex(), "spec": json.loads(spec.to_bytes()),
            **loss_fields("best_loss", t.best_loss), **loss_fields("baseline_loss", t.baseline_loss),
            **loss_fields("min_improvement", t.min_improvement)}
    emit(data, as_json, lambda d: [
        f"task {task_id}: {spec.name} ({spec.evaluation['metric']}, {spec.evaluation['units']})",
        f"pool {format_amount(t.pool)}  reward {format_amount(t.reward_per_improvement)}  quorum {t.quorum}",
        f"best claim {t.best_claim_id or '-'} loss {d['best_loss']:.6f} (baseline {d['baseline_loss']:.6f}, "
        f"epsilon {d['min_improvement']:.6f})",
        f"budget {spec.steps} steps / segments of {spec.segment_steps}; claims so far {t.claim_count}"])


# -- submit ----------------------------------------------------------------------------------


@click.command("submit")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True, help="Task id.")
@click.option("--parent", "parent_id", type=click.IntRange(min=0), help="Claim this improves on [default: current best].")
@click.option("--stake", callback=amount, help="Stake [default: the task's minimum].")
@click.option("--abandon", is_flag=True, help="Forget this run dir's unrevealed submission (to start over).")
@store_option
@chain_options
@json_option
def submit(run_dir, task_id, parent_id, stake, abandon, store_spec, as_json, **chain):
    """Pin a finished run's artifacts, commit, wait a block, reveal. Safe to re-run after a crash.

    Refuses, before any gas is spent, a run that does not meet the task (steps, segment
    length, data, environment, budget), a parent that is not a claim of the task, and a
    stake below the task's minimum or above the balance; warns when the loss cannot
    beat the best by the task's epsilon, or another claim on the same parent is pending.
    A reveal that fails leaves the saved commit: fix the cause and run the same command
    again, or pass --abandon to start over.

    \b
    Examples:
      artrain submit runs/a --task 1 --dev-account 1
      artrain submit runs/a --task 1 --stake 0.2eth --json
      artrain submit runs/a --task 1 --abandon          # forget an unrevealed submission
    """
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
                       progress=progress, warn=warn)
    d = s.to_dict()
    d.update(loss_fields("claimed_loss", s.claimed_loss))
    emit(d, as_json, lambda d: [
        f"claim {d['claim_id']} revealed on task {d['task_id']} (loss {d['claimed_loss']:.6f}, "
        f"stake {format_amount(d['stake'])}){' [resumed]' if d['resumed'] else ''}",
        f"manifest {d['manifest_cid']}",
        f"commit {d['commit_tx']}  reveal {d['reveal_tx']}  gas " +
        ", ".join(f"{k} {v}" for k, v in sorted(d["gas"].items()))])


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


# -- queries ---------------------------------------------------------------------------------


@click.command("best")
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True)
@click.option("--download", type=click.Path(file_okay=False, path_type=Path),
              help="Fetch and verify the best model's code and weights into this dir (new, empty, or "
                   "made by an earlier download).")
@click.option("--force", is_flag=True, help="Download into a non-empty dir an earlier download did not make.")
@store_option
@chain_options
@json_option
def best(task_id, download, force, store_spec, as_json, **chain):
    """The task's on-chain best claim: loss, trainer, code, manifest and weights CIDs.

    \b
    Examples:
      artrain best --task 1
      artrain best --task 1 --download best/ --json
    """
    ctx = context_from(chain, need_account=False)
    store = open_store(store_spec)
    info = (queries.download_best(ctx.ledger, store, task_id, download, force=force) if download
            else queries.best_model(ctx.ledger, store, task_id))
    emit(info, as_json, lambda d: [
        f"task {task_id} best: claim {d['claim_id'] or '- (baseline)'}  {d['metric']} = {d['loss']:.6f} "
        f"{d['units']} (baseline {d['baseline_loss']:.6f})",
        f"trainer {d['trainer'] or '-'}", f"code     {d['code_cid']}", f"manifest {d['manifest_cid'] or '-'}",
        f"weights  {d['weights_cid'] or '-'}"] + ([
            f"downloaded to {download} (load it: see \"The best model\" in README.md)"] if download else []))


@click.command("status")
@click.argument("claim_id", type=click.IntRange(min=1))
@chain_options
@json_option
def status(claim_id, as_json, **chain):
    """One claim: state, confirmations, deadline, open dispute.

    \b
    Examples:
      artrain status 1
      artrain status 1 --json | jq .state
    """
    ctx = context_from(chain, need_account=False)
    info = queries.claim_status(ctx.ledger, claim_id)
    emit(info, as_json, lambda d: [
        f"claim {claim_id} (task {d['task_id']}): {d['state']}  confirmations {d['confirmations']}/{d['quorum']}",
        f"loss {d['claimed_loss']:.6f}  trainer {d['trainer']}  stake {format_amount(d['stake'])}",
        f"{_deadline(d['challenge_deadline'], d['now'])}  manifest {d['manifest_cid']}"]
        + ([f"dispute {d['dispute']['kind']} segment {d['dispute']['segment']}: {d['dispute']['state']} "
            f"(uphold {d['dispute']['votes_uphold']} / dismiss {d['dispute']['votes_dismiss']})"]
           if d.get("dispute") else []))


def _deadline(deadline: int, now: int) -> str:
    """Chain time, said the way a person reads it: still to come, or how long ago it passed."""
    left = deadline - now
    if left >= 0:
        return f"challenge deadline in {_span(left)} (chain time)"
    return f"challenge deadline passed {_span(-left)} ago (chain time)"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


@click.command("claims")
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True)
@chain_options
@json_option
def claims(task_id, as_json, **chain):
    """A task's history: every claim (with its outcome) and every experiment report.

    \b
    Examples:
      artrain claims --task 1
      artrain claims --task 1 --json | jq '.[] | select(.kind == "report") | .note'
    """
    ctx = context_from(chain, need_account=False)
    ctx.ledger.task(task_id)  # an unknown task is an error (LedgerUnknownTask), not an empty table
    rows = queries.history(ctx.ledger, task_id)

    def human(rows):
        yield f"{'kind':7} {'id':>4} {'state':11} {'loss':>10}  {'trainer':42} note"
        for r in rows:
            if r["kind"] == "claim":
                note = ("improved" if r["improved"] else "") + (f" challenged x{r['challenges']}" if r["challenges"] else "")
                yield f"claim   {r['claim_id']:>4} {r['state']:11} {r['claimed_loss']:>10.6f}  {r['trainer']:42} {note}"
            else:
                yield f"report  {'-':>4} {'-':11} {r['loss']:>10.6f}  {r['reporter']:42} {r['note'][:60]}"
    emit(rows, as_json, human)


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
    ctx = context_from(chain)
    rep = report_run(ctx.ledger, open_store(store_spec), run_dir, task_id, note)
    emit({"task_id": task_id, "manifest_cid": rep["manifest_cid"], **loss_fields("loss", rep["loss_micro"]),
          "tx": rep["tx"], "gas": rep["gas"]}, as_json,
         lambda d: [f"report published on task {task_id}: loss {d['loss']:.6f} manifest {d['manifest_cid']} "
                     f"(tx {d['tx']}, gas {d['gas']})"])


@click.command("withdraw")
@chain_options
@json_option
def withdraw(as_json, **chain):
    """Pay out everything the ledger owes this account (rewards, returned stakes, fees).

    \b
    Examples:
      artrain withdraw --dev-account 1
      artrain withdraw --keystore trainer.json --json
    """
    withdraw_owed(as_json, chain)


def withdraw_owed(as_json: bool, chain: dict) -> None:
    """``withdraw`` of artrain and arverify: one body (the ledger owes an account one balance)."""
    ctx = context_from(chain)
    owed = ctx.ledger.balance_of(ctx.address)
    if owed == 0:
        emit({"account": ctx.address, "withdrawn": 0}, as_json,
             lambda d: [f"nothing to withdraw for {ctx.address}"])
        return
    tx = ctx.ledger.withdraw()
    emit({"account": ctx.address, "withdrawn": owed, "tx": tx.tx_hash, "gas": tx.gas_used}, as_json,
         lambda d: [f"withdrew {format_amount(owed)} to {ctx.address} (tx {tx.tx_hash})"])


# -- ledger ----------------------------------------------------------------------------------


@click.group("ledger")
def ledger() -> None:
    """The ledger contract itself: is the code at an address this source?"""


@ledger.command("verify")
@click.argument("address", required=False)
@click.option("--sources", "source_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Checkout holding contracts/ and node_modules/ [default: this installation's].")
@click.option("--solc", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A solc of the build's version [default: scripts/solcjs-cli, the solc-js in node_modules].")
@chain_options
@json_option
def ledger_verify(address, source_root, solc, as_json, **chain):
    """Check that the ledger at ADDRESS runs this source: recompile it with the settings the
    build recorded (py-solc-x, through solc-js: nothing is downloaded) and compare with the
    code on chain. "full" means byte for byte, metadata included (the exact sources);
    "partial" means the same code built from sources differing only in comments or whitespace;
    anything else exits 1. ADDRESS defaults to the configured ledger; works on any EVM
    JSON-RPC endpoint.

    \b
    Examples:
      artrain ledger verify                            # the devnet's (or $ARLEDGER_LEDGER's) ledger
      artrain ledger verify 0x5FbDB2315678afecb367f032d93F642f64180aa3 --rpc-url https://rpc.example
      artrain ledger verify --json | jq .match
    """
    if address:
        chain["ledger_address"] = address
    ctx = context_from(chain, need_account=False)
    verdict = verify_source(VerifyRequest(ctx.ledger.w3, ctx.ledger.address, source_root or PROJECT_ROOT, solc))
    if not verdict.ok and not as_json:
        raise SourceMismatch(f"{verdict.address} on chain {verdict.chain_id}: {verdict.reason}")
    emit(verdict.to_dict(), as_json, lambda d: [
        f"{d['address']} on chain {d['chain_id']}: {d['match']} match with {d['contract']} "
        f"(solc {d['compiler']}, {d['code_bytes']} bytes, compiled in {d['compile_seconds']:.1f}s)",
        f"  {d['reason']}",
        *([f"  note: differs from the build record: {', '.join(d['changed_since_build'])}"]
          if d["changed_since_build"] else [])])
    if not verdict.ok:
        raise SystemExit(1)
