"""`artrain devnet up|down|status|advance`: a local anvil chain with the ledger deployed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from arledger import devnet as dn


def _out(data: dict, as_json: bool, lines: list[str]) -> None:
    click.echo(json.dumps(data, sort_keys=True) if as_json else "\n".join(lines))


@click.group("devnet")
def devnet_group() -> None:
    """Run a local development chain (anvil from npm) with the ledger deployed.

    \b
    Examples:
      artrain devnet up --json        # start (or find) it; prints rpc url, chain id, ledger address
      artrain devnet advance --seconds 3600
      artrain devnet status
      artrain devnet down             # stop it; its state is kept for the next `up`
    """


@devnet_group.command("up")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where anvil keeps its state [default: $ARLEDGER_HOME/devnet].")
@click.option("--port", type=click.IntRange(1, 65535), default=8545, show_default=True, envvar="ARLEDGER_DEVNET_PORT",
              show_envvar=True, help="Port on 127.0.0.1.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def up(data_dir, port, as_json):
    """Start anvil on 127.0.0.1, deploy the ledger once, write the deployment file.

    \b
    Examples:
      artrain devnet up
      artrain devnet up --port 8546 --data-dir /tmp/chain --json
    """
    dep, started = dn.up(data_dir, port)
    data = {"rpc_url": dep.rpc_url, "chain_id": dep.chain_id, "ledger": dep.ledger, "started": started,
            "deploy_block": dep.deploy_block, "deployment": str(dn.deployment_path()), "pid": dep.pid}
    _out(data, as_json, [f"devnet {'started' if started else 'already running'}: {dep.rpc_url} "
                         f"(chain id {dep.chain_id})", f"ledger  {dep.ledger}",
                         f"deployment file {dn.deployment_path()}"])


@devnet_group.command("down")
@click.option("--json", "as_json", is_flag=True)
def down(as_json):
    """Stop the devnet (its chain state is kept).

    \b
    Example:
      artrain devnet down
    """
    stopped = dn.down()
    _out({"stopped": stopped}, as_json, ["devnet stopped" if stopped else "devnet was not running"])


@devnet_group.command("status")
@click.option("--json", "as_json", is_flag=True)
def status(as_json):
    """Is the devnet running, where, and at which block.

    \b
    Examples:
      artrain devnet status
      artrain devnet status --json
    """
    st = dn.status()
    lines = [f"devnet {'running' if st['running'] else 'not running'}"]
    if st.get("rpc_url"):
        lines.append(f"rpc {st['rpc_url']}  ledger {st.get('ledger')}  block {st.get('block', '-')}")
    _out(st, as_json, lines)


@devnet_group.command("advance")
@click.option("--seconds", type=click.IntRange(min=1), required=True, help="How far to move chain time.")
@click.option("--rpc-url", help="Endpoint [default: the deployment file's].")
@click.option("--json", "as_json", is_flag=True)
def advance(seconds, rpc_url, as_json):
    """Move chain time forward by N seconds and mine a block (dev chains only): the way
    to let a challenge or voting window pass on a devnet.

    \b
    Examples:
      artrain devnet advance --seconds 600     # past a 10-minute challenge window
      artrain devnet advance --seconds 3600 --json
    """
    url = rpc_url or dn.Deployment.load().rpc_url
    ts = dn.advance(seconds, url)
    _out({"timestamp": ts}, as_json, [f"chain time is now {ts}"])


devnet = devnet_group  # the name commands.py registers
