"""``load_context``: flags > env > deployment file, accounts from key or keystore, and a
ConfigError naming the offending setting for each way it can be wrong (real anvil);
plus the two inputs every command parses first: amounts and the contract artifact."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from eth_account import Account

from arledger.chain.artifact import load_artifact
from arledger.chain.config import load_account, load_context
from arledger.chain.deployment import Deployment
from arledger.chain.ledger import Ledger
from arledger.chain.signer import Signer
from arledger.chain.units import format_amount, parse_amount
from arledger.cli.common import chain_options, context_from
from arledger.devnet import free_port
from arledger.errors import ChainUnavailable, ConfigError

ENV = ("ARLEDGER_RPC_URL", "ARLEDGER_LEDGER", "ARLEDGER_KEY", "ARLEDGER_KEYSTORE", "ARLEDGER_KEYSTORE_PASSWORD")


@pytest.fixture
def home(tmp_path, monkeypatch, chain):
    """A clean ARLEDGER_HOME whose deployment file points at a dead URL and the real ledger."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path))
    dead = f"http://127.0.0.1:{free_port()}"
    dep = Deployment(dead, 31337, chain.ledger.address, 1, None, "", chain.keys)
    (tmp_path / "deployment.json").write_bytes(dep.to_json())
    return tmp_path, dead


def _write_file_rpc(home_dir, rpc_url):
    path = home_dir / "deployment.json"
    data = json.loads(path.read_text())
    data["rpc_url"] = rpc_url
    path.write_text(json.dumps(data))


def test_parse_amount_units_and_errors():
    assert parse_amount("0.5eth") == 5 * 10**17
    assert parse_amount("1000gwei") == 10**12
    assert parse_amount("123wei") == parse_amount("123") == 123
    assert format_amount(15 * 10**17) == "1.5eth" and format_amount(0) == "0wei"
    for bad in ("1.5wei", "-1eth", "3 dogecoin", ""):
        with pytest.raises(ConfigError, match="^stake: "):
            parse_amount(bad, field="stake")


def test_artifact_missing_or_malformed_names_file(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path / "nope.json")):
        load_artifact(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"abi": []}))
    with pytest.raises(ConfigError, match="bad.json: contract artifact lacks field 'bytecode'"):
        load_artifact(bad)
    art = load_artifact()
    assert art.has_function("reveal") and any(e["name"] == "LedgerWrongBond" for e in art.entries("error"))


@pytest.mark.chain
def test_precedence_flag_over_env_over_file(home, chain, monkeypatch):
    home_dir, dead = home
    other = Ledger.deploy(chain.ledger.rpc, Signer.from_key(chain.keys[0])).address
    # file only: the file's rpc (made live) and ledger
    _write_file_rpc(home_dir, chain.rpc_url)
    ctx = load_context(dev_account=3)
    assert (ctx.rpc_url, ctx.ledger.address) == (chain.rpc_url, chain.ledger.address)
    assert ctx.source == {"rpc_url": str(home_dir / "deployment.json"), "ledger": str(home_dir / "deployment.json"),
                          "account": "devnet account 3"}
    assert ctx.address == chain.address(3)
    # env beats the file (file's rpc dead again; env's ledger is another contract, lowercase ok)
    _write_file_rpc(home_dir, dead)
    monkeypatch.setenv("ARLEDGER_RPC_URL", chain.rpc_url)
    monkeypatch.setenv("ARLEDGER_LEDGER", other.lower())
    monkeypatch.setenv("ARLEDGER_KEY", chain.keys[4])
    ctx = load_context(dev_account=3)
    assert (ctx.ledger.address, ctx.address) == (other, chain.address(4))
    assert ctx.source == {"rpc_url": "$ARLEDGER_RPC_URL", "ledger": "$ARLEDGER_LEDGER", "account": "$ARLEDGER_KEY"}
    # flags beat env
    monkeypatch.setenv("ARLEDGER_RPC_URL", dead)
    ctx = load_context(rpc_url=chain.rpc_url, ledger=chain.ledger.address, key=chain.keys[5])
    assert (ctx.ledger.address, ctx.address) == (chain.ledger.address, chain.address(5))
    assert set(ctx.source.values()) == {"flag"}
    # and the env's dead URL, once it wins, is named in one line
    with pytest.raises(ChainUnavailable, match=dead.replace(".", r"\.")):
        load_context(ledger=chain.ledger.address, key=chain.keys[5])


@pytest.mark.chain
def test_keystore_with_env_password_and_wrong_password(home, chain, tmp_path, monkeypatch):
    _write_file_rpc(home[0], chain.rpc_url)
    keystore = tmp_path / "trainer.json"
    blob = Account.encrypt(chain.keys[6], "s3cret", kdf="pbkdf2", iterations=1000)
    keystore.write_text(json.dumps(blob))
    monkeypatch.setenv("ARLEDGER_KEYSTORE", str(keystore))
    monkeypatch.setenv("ARLEDGER_KEYSTORE_PASSWORD", "s3cret")
    ctx = load_context()
    assert ctx.address == chain.address(6) and ctx.source["account"] == "$ARLEDGER_KEYSTORE"
    assert ctx.ledger.balance_of(ctx.address) == 0  # a usable, connected Ledger
    monkeypatch.setenv("ARLEDGER_KEYSTORE_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match="trainer.json: wrong password"):
        load_context()
    monkeypatch.delenv("ARLEDGER_KEYSTORE_PASSWORD")
    prompted = []
    acct = load_account(keystore=str(keystore), prompt=lambda text: prompted.append(text) or "s3cret")
    assert acct.address == chain.address(6) and "trainer.json" in prompted[0]
    with pytest.raises(ConfigError, match="missing.json: keystore file not found"):
        load_account(keystore=str(tmp_path / "missing.json"))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="junk.json: not a keystore JSON"):
        load_account(keystore=str(tmp_path / "junk.json"))


@pytest.mark.chain
def test_bad_key_bad_ledger_and_missing_settings(home, chain, tmp_path, monkeypatch):
    home_dir, _ = home
    _write_file_rpc(home_dir, chain.rpc_url)
    with pytest.raises(ConfigError, match=r"^key: not a valid private key"):
        load_context(key="0x1234")
    no_code = "0x" + "11" * 20
    with pytest.raises(ConfigError, match=f"ledger: no contract at {no_code} on {chain.rpc_url}"):
        load_context(ledger=no_code, dev_account=1)
    with pytest.raises(ConfigError, match="ledger: 'not-an-address' is not a contract address"):
        load_context(ledger="not-an-address", dev_account=1)
    mixed = chain.ledger.address  # 0x5FbDB23...: mixed case, so a swapped case breaks EIP-55
    with pytest.raises(ConfigError, match="wrong EIP-55 checksum"):
        load_context(ledger=mixed[:2] + mixed[2:].swapcase(), dev_account=1)
    with pytest.raises(ConfigError, match="dev-account: 12"):
        load_context(dev_account=12)
    with pytest.raises(ConfigError, match="no account"):
        load_context()
    assert load_context(need_account=False).address is None  # read-only commands need no key
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="deployment.json: no deployment file"):
        load_context(key=chain.keys[1])


@pytest.mark.chain
def test_chain_options_feed_context_from(home, chain):
    @click.command()
    @chain_options
    def who(**kwargs):
        ctx = context_from(kwargs)
        click.echo(f"{ctx.address} {ctx.ledger.address} {kwargs}")

    res = CliRunner().invoke(who, ["--rpc-url", chain.rpc_url, "--dev-account", "2"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"{chain.address(2)} {chain.ledger.address} {{}}"  # options popped
    assert "--keystore" in CliRunner().invoke(who, ["--help"]).output
