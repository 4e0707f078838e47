"""`artrain devnet up|status|advance|down` with a real anvil in a tmp ARLEDGER_HOME."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from arledger import devnet as dn
from arledger.cli import main

pytestmark = pytest.mark.chain


def _run(runner, *args):
    res = runner.invoke(main, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output) if "--json" in args else res.output


def test_devnet_up_status_advance_down(tmp_path, monkeypatch):
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "home"))
    port = dn.free_port()
    data = tmp_path / "data"
    runner = CliRunner()
    try:
        up = _run(runner, "devnet", "up", "--data-dir", str(data), "--port", str(port), "--json")
        assert up["started"] is True and up["rpc_url"] == f"http://127.0.0.1:{port}"
        assert up["chain_id"] == 31337 and up["ledger"].startswith("0x")
        dep = json.loads((tmp_path / "home" / "deployment.json").read_text())
        assert dep["ledger"] == up["ledger"] and len(dep["dev_keys"]) >= 8

        again = _run(runner, "devnet", "up", "--data-dir", str(data), "--port", str(port), "--json")
        assert again["started"] is False and again["ledger"] == up["ledger"]  # idempotent

        st = _run(runner, "devnet", "status", "--json")
        assert st["running"] is True and st["ledger_deployed"] is True
        t0 = _run(runner, "devnet", "advance", "--seconds", "1", "--json")["timestamp"]
        t1 = _run(runner, "devnet", "advance", "--seconds", "5000", "--json")["timestamp"]
        assert t1 - t0 >= 5000

        assert _run(runner, "devnet", "down", "--json") == {"stopped": True}
        assert _run(runner, "devnet", "status", "--json")["running"] is False

        # state kept: the same ledger is found again, not redeployed
        back = _run(runner, "devnet", "up", "--data-dir", str(data), "--port", str(port), "--json")
        assert back["started"] is True and back["ledger"] == up["ledger"]
        assert "running" in _run(runner, "devnet", "status")
    finally:
        dn.down()


def test_devnet_advance_unreachable_names_url(tmp_path, monkeypatch):
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path))
    url = f"http://127.0.0.1:{dn.free_port()}"
    res = CliRunner().invoke(main, ["devnet", "advance", "--seconds", "5", "--rpc-url", url])
    assert res.exit_code == 1 and "ChainUnavailable" in res.output and url in res.output
