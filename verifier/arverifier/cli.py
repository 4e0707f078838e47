"""`arverify`: the verifier's command line (a thin click layer over arverifier).

The checker and the node import torch (2 s): `check` and `watch` import them when they
run, so `arverify --help` and the staking commands answer at once (tests/test_cli_start.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from arledger import taskspec
from arledger.chain.units import format_amount, loss_fields, parse_amount
from arledger.cli.common import (
    chain_options,
    context_from,
    CONTEXT_SETTINGS,
    emit,
    Group,
    json_option,
    open_store,
    store_option,
)
from arledger.cli.ledger_cmds import withdraw_owed
from arledger.errors import ConfigError
from arledger.execution.sandbox import available_backend


def _data_dir(value: Path | None, address: str) -> Path:
    if value:
        return value
    home = Path(os.environ.get("ARLEDGER_HOME") or Path.home() / ".arledger")
    return home / "verifier" / address.lower()


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="autoresearch-ledger")
def main() -> None:
    """arverify: verify training claims by replaying segments, confirm or challenge on chain.

    \b
    Examples:
      arverify register --stake 1eth --dev-account 3
      arverify watch --dev-account 3                 # follow the ledger until Ctrl-C
      arverify watch --once --json --dev-account 3   # handle what is pending, then exit
      arverify check 7                               # verdict for claim 7, no transaction
    """


@main.command()
@click.option("--stake", required=True, help="Stake to add, e.g. 1eth.")
@chain_options
@json_option
def register(stake, as_json, **chain):
    """Register as a verifier (or top up the stake).

    \b
    Examples:
      arverify register --stake 1eth --dev-account 3
      arverify register --stake 0.5eth --keystore verifier.json --rpc-url https://rpc.example
    """
    ctx = context_from(chain)
    tx = ctx.ledger.register_verifier(parse_amount(stake, "stake"))
    info = ctx.ledger.verifier_info(ctx.address)
    emit({"verifier": ctx.address, "stake": info.stake, "tx": tx.tx_hash, "gas": tx.gas_used}, as_json,
         lambda d: [f"verifier {d['verifier']} registered, stake {format_amount(d['stake'])} (tx {d['tx']})"])


@main.command()
@chain_options
@json_option
def unregister(as_json, **chain):
    """Unregister; the stake becomes withdrawable (refused while bound to an open claim or dispute).

    \b
    Example:
      arverify unregister --dev-account 3 && arverify withdraw --dev-account 3
    """
    ctx = context_from(chain)
    tx = ctx.ledger.unregister_verifier()
    emit({"verifier": ctx.address, "tx": tx.tx_hash, "balance": ctx.ledger.balance_of(ctx.address)}, as_json,
         lambda d: [f"verifier {d['verifier']} unregistered; withdrawable {format_amount(d['balance'])} "
                     "(arverify withdraw)"])


@main.command()
@chain_options
@json_option
def withdraw(as_json, **chain):
    """Pay out fees, shares and returned stake owed to this verifier.

    \b
    Examples:
      arverify withdraw --dev-account 3
      arverify withdraw --keystore verifier.json --json
    """
    withdraw_owed(as_json, chain)


def _checker(address: str, store_spec, data_dir: Path, sandbox: str):
    from arverifier.check import ClaimChecker  # lazy: torch, not for --help

    store = open_store(store_spec)
    return store, ClaimChecker(store, address, workdir=data_dir / "work", sandbox_backend=sandbox)


def _sandbox_label(choice: str) -> str:
    return f"auto ({available_backend() or 'none available'})" if choice == "auto" else choice


sandbox_option = click.option("--sandbox", type=click.Choice(["auto", "bwrap", "rlimit"]), default="auto",
                              show_default=True, help="Sandbox backend for claim code.")


@main.command()
@click.argument("claim_id", type=click.IntRange(min=1))
@store_option
@sandbox_option
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path))
@chain_options
@json_option
def check(claim_id, store_spec, sandbox, data_dir, as_json, **chain):
    """Verify one claim as a verifier would (sampled segments, final evaluation); sends nothing.

    Without an account the sample is drawn for the zero address. Exit 3 when the verdict
    is a challenge, so scripts can tell a bad claim from a failure (1).

    \b
    Examples:
      arverify check 2
      arverify check 2 --dev-account 3 --json | jq .decision
    """
    from arverifier.node import claim_info  # lazy: torch, not for --help

    ctx = context_from(chain, need_account=False)
    me = ctx.address or "0x" + "00" * 20
    store, checker = _checker(me, store_spec, _data_dir(data_dir, me), sandbox)
    info = claim_info(ctx.ledger, claim_id)
    try:
        verdict = checker.check(info, taskspec.fetch(store, ctx.ledger.task(info.task_id).spec_digest))
    finally:
        checker.close()
    data = {**verdict.to_dict(), **loss_fields("measured_loss", verdict.measured_loss),
            **loss_fields("claimed_loss", info.claimed_loss)}
    emit(data, as_json, lambda d: [
        f"claim {claim_id}: {d['decision'].upper()}  {d['reason']}",
        f"segments {d['segments'] or '-'}  measured loss "
        f"{'-' if d['measured_loss'] is None else format(d['measured_loss'], '.6f')}",
        "time " + ", ".join(f"{k} {v:.1f}s" for k, v in d["seconds"].items())])
    if verdict.decision == "challenge":
        sys.exit(3)  # scripts can tell "this claim is bad" from "the tool failed" (1)


@main.command()
@click.option("--once", is_flag=True, help="Process everything pending, then exit.")
@click.option("--confirmations", type=click.IntRange(min=0), default=2, show_default=True,
              help="Act only on events this many blocks deep.")
@click.option("--poll-interval", type=float, default=2.0, show_default=True)
@click.option("--from-block", type=click.IntRange(min=0), help="First block for a fresh data dir [default: the ledger's deployment block, if known].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cursor and state [default: $ARLEDGER_HOME/verifier/<address>].")
@click.option("--no-finalize", is_flag=True, help="Don't finalize claims or resolve disputes for others.")
@click.option("--heartbeat", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds between 'idle' lines while nothing happens (0: none).")
@store_option
@sandbox_option
@chain_options
@json_option
def watch(once, confirmations, poll_interval, from_block, data_dir, no_finalize, heartbeat, store_spec, sandbox,
          as_json, **chain):
    """Follow the ledger: verify revealed claims, confirm or challenge, vote on disputes, finalize.

    Starts with one line saying who watches what (account, ledger, chain, store, sandbox,
    confirmation depth); then one line per decision: claim, decision, segments, result,
    time; while idle, a heartbeat line. With --json every line is a JSON object, and
    --once ends with a {"kind": "result", ...} object even when nothing was pending.
    State (cursor, decisions, sent transactions) lives in SQLite under --data-dir, so a
    restart resumes without missing a claim or repeating a transaction. Events count
    only --confirmations blocks below the head: on an idle devnet that mines only on
    demand, use --confirmations 0.

    \b
    Examples:
      arverify watch --dev-account 3                              # until Ctrl-C
      arverify watch --once --confirmations 0 --json --dev-account 3
      arverify watch --keystore v.json --rpc-url https://rpc.example --store http://127.0.0.1:5001
    """
    from arverifier.check import ClaimChecker  # lazy: torch, not for --help
    from arverifier.node import NodeConfig, VerifierNode  # lazy: torch, not for --help
    from arverifier.state import WatcherState  # lazy: torch, not for --help

    ctx = context_from(chain)
    store = open_store(store_spec)
    _ready_to_watch(ctx, store)  # before anything is written: a verifier that cannot act says so at once
    data_dir = _data_dir(data_dir, ctx.address)
    checker = ClaimChecker(store, ctx.address, workdir=data_dir / "work", sandbox_backend=sandbox)
    state = WatcherState(data_dir / "state.sqlite")
    state.bind(chain_id=str(ctx.ledger.chain_id), ledger=ctx.ledger.address, verifier=ctx.address)
    on_record = (lambda rec: click.echo(json.dumps(rec, sort_keys=True))) if as_json else None
    if not as_json:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                            stream=sys.stderr)
    node = VerifierNode(ctx.ledger, store, state, checker,
                        NodeConfig(confirmations=confirmations,
                                   start_block=ctx.ledger.deploy_block if from_block is None else from_block,
                                   finalize=not no_finalize), emit=on_record)
    start = {"kind": "start", "verifier": ctx.address, "ledger": ctx.ledger.address, "chain_id": ctx.ledger.chain_id,
             "rpc_url": ctx.rpc_url, "head": ctx.ledger.block_number(), "store": store.url,
             "sandbox": _sandbox_label(sandbox), "confirmations": confirmations, "data_dir": str(data_dir),
             "once": once}
    if as_json:
        on_record(start)
    else:
        click.echo(f"arverify watch: verifier {start['verifier']} on ledger {start['ledger']} (chain {start['chain_id']}, "
                   f"{start['rpc_url']}, head {start['head']}); store {start['store']}, sandbox {start['sandbox']}, "
                   f"acting {confirmations} block(s) below the head; state in {data_dir}", err=True)
    failures: list[str] = []
    try:
        last = node.run(once=once, poll_interval=poll_interval, heartbeat=heartbeat)
        if once:
            result = last.summary()
            failures = last.failures
            if as_json:
                on_record(result)
            else:
                click.echo(f"done: head {result['head']}, {result['decisions']} decision(s), "
                           f"{result['transactions']} transaction(s), {result['pending_claims']} claim(s) pending",
                           err=True)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        checker.close()
        state.close()
    if failures:  # what it could not do is an exit status, not only a log line
        raise click.ClickException(f"{len(failures)} claim(s) or dispute(s) could not be handled in this pass: "
                                   + "; ".join(failures[:3]))


def _ready_to_watch(ctx, store) -> None:
    """What `watch` cannot work without, checked at start: a registered verifier with stake (else
    it would replay every claim and then be refused its confirmations) and a store that answers
    (the node answered already: the context read the chain)."""
    from arledger.protocol import artifacts  # lazy: torch, not for --help

    v = ctx.ledger.verifier_info(ctx.address)
    if not v.registered or not v.stake:
        raise ConfigError(f"{ctx.address} is not a registered verifier on ledger {ctx.ledger.address}; "
                          "register first: arverify register --stake 1eth")
    artifacts.check_answers(store)  # StoreUnavailable names the store
