"""`artrain ledger verify`: the devnet's ledger is this source, byte for byte; a ledger
deployed from a modified source is not; one built from a comment-only change is the same
code with other metadata (a partial match). Real anvil, real solc-js through py-solc-x."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import solcx
from click.testing import CliRunner

from arledger.chain.artifact import load_artifact
from arledger.chain.ledger import Ledger
from arledger.chain.signer import Signer
from arledger.chain.source import PROJECT_ROOT, read_sources, SHIM, split_metadata, standard_input
from arledger.cli import main

pytestmark = pytest.mark.chain

TARGET = "contracts/TrainingLedger.sol"


def _tree_with(tmp_path: Path, old: str, new: str) -> Path:
    """A checkout whose TrainingLedger.sol has ``old`` replaced by ``new`` (imports shared)."""
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "contracts", root / "contracts")
    os.symlink(PROJECT_ROOT / "node_modules", root / "node_modules")
    path = root / TARGET
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return root


def _deploy_from(root: Path, chain) -> str:
    """Compile the checkout with the build's settings and deploy what it makes."""
    artifact = load_artifact()
    std = standard_input(artifact.metadata, read_sources(artifact.metadata, root))
    std["settings"]["outputSelection"] = {TARGET: {"TrainingLedger": ["evm.bytecode.object"]}}
    out = solcx.compile_standard(std, solc_binary=PROJECT_ROOT / SHIM)
    bytecode = "0x" + out["contracts"][TARGET]["TrainingLedger"]["evm"]["bytecode"]["object"]
    deployed = Ledger.deploy(chain.ledger.rpc, Signer.from_key(chain.keys[0]), replace(artifact, bytecode=bytecode))
    return deployed.address


def _verify(chain, *args: str):
    return CliRunner().invoke(main, ["ledger", "verify", *args, "--rpc-url", chain.anvil.rpc_url])


def test_the_devnet_ledger_is_this_source_byte_for_byte(anvil_chain):
    res = _verify(anvil_chain, anvil_chain.ledger.address, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["match"], out["ok"], out["changed_since_build"]) == ("full", True, [])
    assert out["contract"] == f"{TARGET}:TrainingLedger" and out["compiler"].startswith("0.8.37+commit.")
    human = _verify(anvil_chain, anvil_chain.ledger.address)
    assert human.exit_code == 0 and "full match" in human.output


def test_a_ledger_from_a_modified_source_is_rejected(anvil_chain, tmp_path):
    # One constant changed: the sort of edit a look-alike deployment would hide.
    root = _tree_with(tmp_path, "MAX_CONFIRM_SEGMENTS = 64;", "MAX_CONFIRM_SEGMENTS = 65;")
    address = _deploy_from(root, anvil_chain)
    res = _verify(anvil_chain, address)
    assert res.exit_code == 1
    assert "not this contract" in res.output and address in res.output
    as_json = _verify(anvil_chain, address, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["match"] == "none"
    # The same checkout, used as the source, verifies that deployment and names what it changed.
    own = _verify(anvil_chain, address, "--sources", str(root), "--json")
    assert own.exit_code == 0, own.output
    assert json.loads(own.output)["changed_since_build"] == [TARGET]


def test_a_comment_only_change_is_a_partial_match(anvil_chain, tmp_path):
    root = _tree_with(tmp_path, "contract TrainingLedger", "// built elsewhere\ncontract TrainingLedger")
    address = _deploy_from(root, anvil_chain)
    out = json.loads(_verify(anvil_chain, address, "--json").output)
    assert (out["match"], out["ok"]) == ("partial", True)
    code = anvil_chain.ledger.rpc.code(address)
    honest = anvil_chain.ledger.rpc.code(anvil_chain.ledger.address)
    assert split_metadata(code)[0] == split_metadata(honest)[0] and code != honest


def test_no_contract_and_a_wrong_compiler_are_one_line_errors(anvil_chain, tmp_path):
    empty = _verify(anvil_chain, "0x" + "00" * 19 + "01")
    assert empty.exit_code == 1 and "no contract at" in empty.output and "Traceback" not in empty.output
    fake = tmp_path / "solc"
    fake.write_text("#!/bin/sh\necho 'Version: 0.8.20+commit.a1b79de6.Linux.g++'\n")
    fake.chmod(0o755)
    wrong = _verify(anvil_chain, anvil_chain.ledger.address, "--solc", str(fake))
    assert wrong.exit_code == 1 and "is 0.8.20+commit.a1b79de6, the build used 0.8.37" in wrong.output


# -- the comparison's parts, without a compiler ---------------------------------------------


def test_split_metadata_finds_the_cbor_trailer_only_when_there_is_one():
    trailer = bytes([0xA2]) + b"\x64ipfs" + bytes(36) + b"\x64solc" + bytes(3)
    code = b"\x60\x80\x60\x40" + trailer + len(trailer).to_bytes(2, "big")
    assert split_metadata(code) == (b"\x60\x80\x60\x40", trailer + len(trailer).to_bytes(2, "big"))
    assert split_metadata(b"\x60\x80\xff\xff") == (b"\x60\x80\xff\xff", b"")  # length past the start
    assert split_metadata(b"\x60\x80\x60\x00\x02") == (b"\x60\x80\x60\x00\x02", b"")  # not a CBOR map
    assert split_metadata(b"\x00") == (b"\x00", b"")


def test_compare_tells_full_partial_and_none():
    from arledger.chain.source import compare

    trailer_a = bytes([0xA1, 0x41, 0x01, 0x41, 0x0A]) + b"\x00\x05"
    trailer_b = bytes([0xA1, 0x41, 0x01, 0x41, 0x0B]) + b"\x00\x05"
    body = b"\x60\x80\x60\x40\x52"
    assert compare(body + trailer_a, body + trailer_a)[0] == "full"
    assert compare(body + trailer_a, body + trailer_b)[0] == "partial"
    match, reason, at = compare(body + trailer_a, b"\x60\x80\x60\x41\x52" + trailer_a)
    assert (match, at) == ("none", 3) and "from byte 3" in reason


def test_immutables_and_library_links_come_from_the_chain():
    from arledger.chain.source import Compiled, with_chain_immutables

    compiled = Compiled(b"\x60\x00\x00\x00\x60", [(1, 3)])
    assert with_chain_immutables(compiled, b"\x60\xaa\xbb\xcc\x60") == b"\x60\xaa\xbb\xcc\x60"
    assert with_chain_immutables(compiled, b"\x60\xaa\xbb\xcc\x61")[-1:] == b"\x60"  # elsewhere: compiled


def test_standard_input_nests_libraries_and_asks_only_for_runtime_code():
    meta = {"language": "Solidity", "sources": {"a.sol": {}},
            "settings": {"compilationTarget": {"a.sol": "A"}, "optimizer": {"enabled": True, "runs": 1},
                         "libraries": {"lib/L.sol:L": "0x" + "11" * 20}}}
    std = standard_input(meta, {"a.sol": "contract A {}"})
    assert std["settings"]["libraries"] == {"lib/L.sol": {"L": "0x" + "11" * 20}}
    assert "compilationTarget" not in std["settings"] and list(std["settings"]["outputSelection"]) == ["a.sol"]
    assert std["sources"] == {"a.sol": {"content": "contract A {}"}}
    from arledger.errors import ConfigError

    meta["settings"]["libraries"] = {"L": "0x" + "11" * 20}
    with pytest.raises(ConfigError, match="not named 'file:Library'"):
        standard_input(meta, {"a.sol": ""})
