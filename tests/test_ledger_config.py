"""Amounts, artifact loading, revert decoding, accounts and configuration precedence."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from arledger.chain import errors as cerr
from arledger.chain.artifact import load_artifact
from arledger.chain.config import load_account, load_context
from arledger.chain.units import format_amount, parse_amount
from arledger.devnet import Deployment, dev_keys
from arledger.errors import ChainUnavailable, ConfigError, ContractRevert


def test_parse_amount_units_and_errors():
    assert parse_amount("0.5eth") == 5 * 10**17
    assert parse_amount("1000gwei") == 10**12
    assert parse_amount("123wei") == parse_amount("123") == 123
    assert format_amount(15 * 10**17) == "1.5eth"
    for bad in ("1.5wei", "-1eth", "3 dogecoin", ""):
        with pytest.raises(ConfigError, match="stake"):
            parse_amount(bad, field="stake")


def test_artifact_missing_names_file(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path / "nope.json")):
        load_artifact(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"abi": []}))
    with pytest.raises(ConfigError, match="'bytecode'"):
        load_artifact(bad)


def test_revert_decoding_from_abi():
    art = load_artifact()
    assert any(e["name"] == "LedgerWrongBond" for e in art.entries("error"))
    data = keccak(text="LedgerWrongBond(uint256,uint256)")[:4] + encode(["uint256", "uint256"], [1, 2])
    exc = cerr.decode_revert(data, "challenge")
    assert isinstance(exc, cerr.LedgerWrongBond) and isinstance(exc, ContractRevert)
    assert exc.error_args == {"sent": 1, "required": 2} and exc.required == 2
    assert str(exc) == "challenge: LedgerWrongBond(sent=1, required=2)"
    msg = keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])
    assert isinstance(cerr.decode_revert(msg), cerr.RevertMessage)
    panic = keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])
    assert "overflow" in str(cerr.decode_revert(panic))
    assert isinstance(cerr.decode_revert("0xdeadbeef"), cerr.UnknownRevert)
    with pytest.raises(AttributeError):
        cerr.LedgerNoSuchError  # noqa: B018


def test_accounts_key_and_keystore(tmp_path, monkeypatch):
    key = dev_keys(2)[1]
    assert load_account(key=key).address == Account.from_key(key).address
    with pytest.raises(ConfigError, match="key"):
        load_account(key="0x1234")
    ks = tmp_path / "ks.json"
    ks.write_text(json.dumps(Account.encrypt(key, "pw")))
    monkeypatch.setenv("ARLEDGER_KEYSTORE_PASSWORD", "pw")
    assert load_account(keystore=str(ks)).address == Account.from_key(key).address
    monkeypatch.delenv("ARLEDGER_KEYSTORE_PASSWORD")
    assert load_account(keystore=str(ks), prompt=lambda _: "pw").address == Account.from_key(key).address
    with pytest.raises(ConfigError, match="wrong password"):
        load_account(keystore=str(ks), prompt=lambda _: "bad")
    with pytest.raises(ConfigError, match="not found"):
        load_account(keystore=str(tmp_path / "none.json"))


def test_unreachable_rpc_names_url(tmp_path, monkeypatch):
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path))
    monkeypatch.setenv("ARLEDGER_RPC_URL", "http://127.0.0.1:9")
    with pytest.raises(ChainUnavailable, match="http://127.0.0.1:9"):
        load_context(ledger="0x" + "11" * 20, need_account=False)


@pytest.mark.chain
def test_context_precedence_flag_env_file(chain, tmp_path, monkeypatch):
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path))
    monkeypatch.delenv("ARLEDGER_RPC_URL", raising=False)
    monkeypatch.delenv("ARLEDGER_LEDGER", raising=False)
    monkeypatch.delenv("ARLEDGER_KEY", raising=False)
    dep = Deployment("http://127.0.0.1:9", 31337, chain.ledger.address, 1, None, str(tmp_path), chain.keys)
    (tmp_path / "deployment.json").write_bytes(dep.to_json())
    with pytest.raises(ChainUnavailable):  # the file's (dead) URL is used when nothing overrides it
        load_context(dev_account=0)
    monkeypatch.setenv("ARLEDGER_RPC_URL", chain.rpc_url)  # env beats the file
    ctx = load_context(dev_account=3)
    assert ctx.source["rpc_url"] == "$ARLEDGER_RPC_URL" and ctx.address == Account.from_key(chain.keys[3]).address
    monkeypatch.setenv("ARLEDGER_KEY", chain.keys[4])  # env key beats the dev account
    assert load_context(dev_account=3).address == Account.from_key(chain.keys[4]).address
    ctx = load_context(rpc_url=chain.rpc_url, key=chain.keys[5])  # flags beat env
    assert ctx.source["rpc_url"] == "flag" and ctx.address == Account.from_key(chain.keys[5]).address
    with pytest.raises(ConfigError, match="no contract"):
        load_context(ledger="0x" + "22" * 20)
