"""`artrain devnet up|status|advance|down` through CliRunner, against the anvil that `up`
itself starts (tmp ARLEDGER_HOME, free port), including persistence across down/up."""

from __future__ import annotations

import json
import os
import socket

import pytest
from click.testing import CliRunner

from arledger.chain.config import load_context
from arledger.chain.deployment import Deployment
from arledger.cli import main
from arledger.devnet import free_port
from tests.fixtures.chain import task_params

pytestmark = pytest.mark.chain


@pytest.fixture
def devnet_home(tmp_path, monkeypatch):
    for name in ("ARLEDGER_RPC_URL", "ARLEDGER_LEDGER", "ARLEDGER_KEY", "ARLEDGER_KEYSTORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path))
    runner = CliRunner()
    try:
        yield runner, tmp_path
    finally:
        runner.invoke(main, ["devnet", "down"])  # always: never leave an anvil behind


def run(runner, *args) -> dict:
    res = runner.invoke(main, ["devnet", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_devnet_up_status_advance_down_and_persistence(devnet_home):
    runner, home = devnet_home
    port = free_port()
    assert run(runner, "status")["running"] is False
    up = run(runner, "up", "--port", str(port))
    assert up["started"] is True and up["rpc_url"] == f"http://127.0.0.1:{port}" and up["chain_id"] == 31337
    assert up["deployment"] == str(home / "deployment.json")
    dep = Deployment.load(home / "deployment.json")
    assert (dep.ledger, dep.pid, dep.data_dir) == (up["ledger"], up["pid"], str(home / "devnet"))
    assert run(runner, "up", "--port", str(port))["started"] is False  # idempotent: found running
    st = run(runner, "status")
    assert st["running"] is True and st["ledger_deployed"] is True and st["ledger"] == up["ledger"]
    # the deployment file is all a command needs: create a task through it
    ctx = load_context(dev_account=0)
    tid = ctx.ledger.create_task(task_params(), value=10**18).event("TaskCreated")["taskId"]
    ts_before = ctx.ledger.block_timestamp()
    adv = run(runner, "advance", "--seconds", "3600")
    assert adv["timestamp"] >= ts_before + 3600
    assert ctx.ledger.block_timestamp() == adv["timestamp"]
    head = ctx.ledger.block_number()
    assert run(runner, "down") == {"stopped": True}
    assert run(runner, "status")["running"] is False
    assert run(runner, "down") == {"stopped": False}
    # up again (another port even, the data dir named explicitly): same ledger, the task and
    # the chain history are still there
    port2 = free_port()
    again = run(runner, "up", "--port", str(port2), "--data-dir", str(home / "devnet"))
    assert again["started"] is True and again["ledger"] == up["ledger"] and again["deploy_block"] == up["deploy_block"]
    ctx = load_context(dev_account=0)
    assert ctx.rpc_url == f"http://127.0.0.1:{port2}"
    assert ctx.ledger.task_count() == tid and ctx.ledger.task(tid).pool == 10**18
    assert ctx.ledger.block_number() >= head
    assert run(runner, "down") == {"stopped": True}


def test_devnet_errors_are_one_line(devnet_home):
    runner, home = devnet_home
    res = runner.invoke(main, ["devnet", "advance", "--seconds", "10"])
    assert res.exit_code == 1
    assert "deployment.json: no deployment file" in res.output and "Traceback" not in res.output
    with socket.socket() as busy:  # a port someone else holds
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        res = runner.invoke(main, ["devnet", "up", "--port", str(busy.getsockname()[1])])
    assert res.exit_code == 1 and "is in use by another process" in res.output
    assert not (home / "deployment.json").exists()  # nothing half-written
    helped = runner.invoke(main, ["devnet", "--help"])
    assert "artrain devnet up --json" in helped.output
    url = f"http://127.0.0.1:{free_port()}"
    res = runner.invoke(main, ["devnet", "advance", "--seconds", "5", "--rpc-url", url])
    assert res.exit_code == 1 and "cannot reach the JSON-RPC endpoint" in res.output and url in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_stale_deployment_file_never_kills_a_reused_pid(devnet_home):
    runner, home = devnet_home
    # a deployment file left from a previous boot whose pid now belongs to this very test process
    stale = Deployment(f"http://127.0.0.1:{free_port()}", 31337, "0x" + "11" * 20, 1, os.getpid(), str(home), [])
    (home / "deployment.json").write_bytes(stale.to_json())
    assert run(runner, "status")["running"] is False
    assert run(runner, "down") == {"stopped": False}  # and we are still alive to assert it
