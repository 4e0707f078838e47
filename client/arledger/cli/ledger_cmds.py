"""Trainer commands that read the ledger or collect from it: best, status, claims, withdraw, ledger."""

from __future__ import annotations

from pathlib import Path

import click

from arledger import queries
from arledger.chain.source import PROJECT_ROOT, verify_source, VerifyRequest
from arledger.chain.units import format_amount
from arledger.cli.common import chain_options, context_from, emit, json_option, open_store, span, store_option
from arledger.errors import SourceMismatch

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
@click.argument("claim_id", type=click.IntRange(min=1), required=False)
@click.option("--claim", "claim_opt", type=click.IntRange(min=1), help="The claim id, as its neighbours take --task.")
@chain_options
@json_option
def status(claim_id, claim_opt, as_json, **chain):
    """One claim: state, confirmations, deadline, open dispute.

    \b
    Examples:
      artrain status 1
      artrain status --claim 1 --json | jq .state
    """
    if (claim_id is None) == (claim_opt is None):
        raise click.UsageError("name one claim: artrain status CLAIM_ID, or --claim CLAIM_ID")
    claim_id = claim_id or claim_opt
    ctx = context_from(chain, need_account=False)
    info = queries.claim_status(ctx.ledger, claim_id)
    emit(info, as_json, lambda d: [
        f"claim {claim_id} (task {d['task_id']}): {d['state']}  confirmations {d['confirmations']}/{d['quorum']}",
        f"loss {d['claimed_loss']:.6f}  trainer {d['trainer']}  stake {format_amount(d['stake'])}",
        f"{_deadline(d['challenge_deadline'], d['now'])}  manifest {d['manifest_cid']}"]
        + _sealed_status(d.get("sealed"), d["now"])
        + ([f"warning: {d['expiry_warning']}"] if d.get("expiry_warning") else [])
        + ([f"dispute {d['dispute']['kind']} segment {d['dispute']['segment']}: {d['dispute']['state']} "
            f"(uphold {d['dispute']['votes_uphold']} / dismiss {d['dispute']['votes_dismiss']})"]
           if d.get("dispute") else []))


def _sealed_status(s: dict | None, now: int) -> list[str]:
    if not s:
        return []
    if s["scored"]:
        return [f"sealed round {s['round']}: scored on shard {s['shard_cid']} against "
                f"{'claim ' + str(s['incumbent_id']) if s['incumbent_id'] else 'the baseline'} "
                f"(incumbent loss {s['incumbent_loss']:.6f})"]
    if s["round_state"] == "running":
        return [f"sealed round {s['round']}: ends in {span(s['round_ends_at'] - now)}; the loss comes once its "
                "shard is open (`artrain submit RUN --task N --wait`)"]
    if s["round_state"] == "opened":
        return [f"sealed round {s['round']}: shard {s['shard_cid']} is open; reveal the loss with "
                "`artrain submit RUN --task N`"]
    return [f"sealed round {s['round']}: {s['round_state']} (opening deadline "
            f"{'passed' if now > s['open_deadline'] else 'in ' + span(s['open_deadline'] - now)})"]


def _deadline(deadline: int, now: int) -> str:
    """Chain time, said the way a person reads it: still to come, or how long ago it passed."""
    left = deadline - now
    if left >= 0:
        return f"challenge deadline in {span(left)} (chain time)"
    return f"challenge deadline passed {span(-left)} ago (chain time)"


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
    """The ledger contract itself: is the code at an address this source?

    \b
    Examples:
      artrain ledger verify                     # the ledger of the deployment file
      artrain ledger verify 0x5FbDB2315678afecb367f032d93F642f64180aa3 --json
    """


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
    verdict = verify_source(VerifyRequest(ctx.ledger.rpc, ctx.ledger.address, source_root or PROJECT_ROOT, solc))
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
