"""`artrain dashboard`: a thin click layer over arledger.dashboard (served by uvicorn)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import click
import uvicorn

from arledger.addressbook import AddressBook, FILE
from arledger.cli.common import context_from, open_store, read_options, store_option
from arledger.dashboard.app import DashboardConfig, make_app
from arledger.dashboard.saved import open_saved_demo


@click.command("dashboard")
@click.option("--port", type=click.IntRange(0, 65535), default=8150, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--task", "task_id", type=click.IntRange(min=1), help="Open on this task's page.")
@click.option("--confirmations", type=click.IntRange(min=0), default=0, show_default=True,
              help="Blocks an event must be below the head before it is shown (as `arverify watch`).")
@click.option("--poll", "poll_seconds", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between reads of the chain.")
@click.option("--demo", "demo_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Show what `artrain demo` left in this directory: its chain (restarted from its state "
                   "file on a fresh anvil) and its artifact store.")
@store_option
@read_options
def dashboard(port, host, task_id, confirmations, poll_seconds, demo_dir, store_spec, **chain):
    """Serve a live, read-only web dashboard of the ledger: tasks, each task's best-loss curve,
    Pareto view, claims and reports, each claim's manifest, verifications, disputes, votes,
    payouts and the diff of its train.py against its parent's, and the verifiers. New blocks
    appear without a reload. Nothing is fetched from the internet; no key is needed.

    \b
    Examples:
      artrain dashboard                          # the devnet of `artrain devnet up`
      artrain dashboard --demo demo-out          # after `make demo` (its cast named: alice, mallory, v1...)
      artrain dashboard --rpc-url http://127.0.0.1:8545 --ledger 0x5FbD... --task 1 --port 8080
    """
    anvil = None
    book = AddressBook()  # `artrain alias`; a demo's cast (its --out) on top
    names = book.merged(AddressBook(demo_dir / FILE)) if demo_dir else book.names()
    if demo_dir:
        ledger, store, anvil = open_saved_demo(demo_dir)
    else:
        ledger, store = context_from(chain, need_account=False).ledger, open_store(store_spec)
    try:
        app = make_app(DashboardConfig(ledger=ledger, store=store, confirmations=confirmations,
                                       poll_seconds=poll_seconds, task_id=task_id, names=names))
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})") from None
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        # uvicorn re-raises a SIGTERM after its graceful shutdown; as SystemExit it still runs the
        # `finally` below, so a --demo anvil never outlives the dashboard.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        click.echo(f"dashboard of ledger {ledger.address}: http://{host}:{port}/  (Ctrl-C stops it)")
        server.run(sockets=[sock])
    finally:
        if anvil is not None:
            anvil.stop()


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)
