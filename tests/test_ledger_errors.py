"""Typed revert decoding, node refusals and unreachable endpoints as clear ArledgerErrors."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from arledger.chain import errors as cerr
from arledger.chain.ledger import ClaimFields, Evidence, Ledger
from arledger.chain.rpc import Rpc
from arledger.devnet import free_port
from arledger.errors import ArledgerError, ChainError, ChainUnavailable, ConfigError, ContractRevert
from tests.fixtures.chain import E, task_params

TRAINER, V1, CHALLENGER = 1, 2, 6


@pytest.mark.chain
def test_reverts_are_typed_named_and_carry_args(chain):
    assert issubclass(cerr.LedgerWrongBond, ContractRevert) and issubclass(cerr.LedgerWrongBond, ArledgerError)
    tid = chain.create_task()
    chain.register(CHALLENGER)
    cid = chain.open_claim(tid).claim_id
    with pytest.raises(cerr.LedgerWrongBond) as ei:
        chain.as_(CHALLENGER).challenge(cid, Evidence("Artifact"), value=1)
    err = ei.value
    assert type(err).__name__ == "LedgerWrongBond" and err.error_name == "LedgerWrongBond"
    assert err.error_args == {"sent": 1, "required": E // 50} and err.required == E // 50
    assert str(err) == "the bond sent is 1wei; it must be exactly 0.02eth"  # a sentence, amounts in ETH
    assert err.data[:4] == keccak(text="LedgerWrongBond(uint256,uint256)")[:4]
    with pytest.raises(cerr.LedgerInvalidTaskParam) as ei:
        chain.ledger.create_task(task_params(quorum=0))
    assert ei.value.field == "quorum" and "LedgerInvalidTaskParam(field='quorum')" in str(ei.value)
    with pytest.raises(cerr.LedgerNotVerifier) as ei:
        chain.as_(V1).confirm(cid, [0], 1)
    assert ei.value.account == chain.address(V1)
    chain.register(V1, TRAINER)
    with pytest.raises(cerr.LedgerConflictOfInterest) as ei:  # the trainer confirming itself
        chain.as_(TRAINER).confirm(cid, [0], 1)
    assert ei.value.error_args == {"claimId": cid, "account": chain.address(TRAINER)}
    with pytest.raises(cerr.LedgerTooManySegments) as ei:
        chain.as_(V1).confirm(cid, [0] * 65, 1)
    assert ei.value.error_args == {"count": 65, "max": 64}
    chain.as_(V1).confirm(cid, [0], 1)
    with pytest.raises(cerr.LedgerAlreadyConfirmed) as ei:
        chain.as_(V1).confirm(cid, [1], 1)
    assert ei.value.verifier == chain.address(V1)
    with pytest.raises(cerr.LedgerUnknownDispute):
        chain.ledger.dispute(b"\x01" * 32)
    with pytest.raises(cerr.LedgerUnknownClaim):
        chain.ledger.finalize(999)
    # a malformed argument is caught before any RPC, naming the argument
    with pytest.raises(ConfigError, match="^manifest_digest: expected 32 bytes, got 31$"):
        ClaimFields(tid, 0, b"\x01", b"\x00" * 31, b"\x00" * 32, 1, 1, b"\x00" * 32)
    with pytest.raises(ConfigError, match="^dispute_id: expected 32 bytes"):
        chain.ledger.dispute_state("0xnothex")


def test_decoder_handles_builtin_and_unknown_reverts():
    msg = cerr.decode_revert(keccak(text="Error(string)")[:4] + encode(["string"], ["nope"]), "f")
    assert isinstance(msg, cerr.RevertMessage) and str(msg) == "f: reverted: nope"
    panic = cerr.decode_revert(keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11]))
    assert isinstance(panic, cerr.Panic) and panic.code == 0x11 and "overflow" in str(panic)
    assert isinstance(cerr.decode_revert("0xdeadbeef"), cerr.UnknownRevert)
    assert "without data" in str(cerr.decode_revert(None))
    # a custom error from raw bytes: addresses come back checksummed
    addr = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    raw = keccak(text="LedgerNotVerifier(address)")[:4] + encode(["address"], [addr])
    err = cerr.decode_revert("0x" + raw.hex())
    assert type(err) is cerr.LedgerNotVerifier and err.account == addr
    with pytest.raises(AttributeError):
        cerr.LedgerNoSuchError  # noqa: B018 - not in the ABI


def test_unreachable_rpc_is_one_clear_line_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ChainUnavailable) as ei:
        Ledger.connect_rpc(url)
    text = str(ei.value)
    assert url in text and "connection refused" in text and "\n" not in text and len(text) < 200
    assert isinstance(ei.value, ConfigError)  # the CLI shows it as a configuration problem
    with pytest.raises(ConfigError, match="rpc-url"):
        Ledger.connect_rpc("127.0.0.1:8545")


@pytest.mark.chain
def test_node_refusal_and_lost_endpoint_are_chain_errors(chain):
    poor = chain.as_(V1)
    with pytest.raises(ChainError) as ei:  # more ether than the account holds: not a revert
        poor.register_verifier(value=10**30)
    assert not isinstance(ei.value, ContractRevert)
    assert "registerVerifier" in str(ei.value) and "nsufficient funds" in str(ei.value)
    # a Ledger whose node went away: a ChainUnavailable naming the URL, not a requests traceback
    url = f"http://127.0.0.1:{free_port()}"
    gone = Ledger(Rpc(url), chain.ledger.address)
    with pytest.raises(ChainUnavailable, match=url.replace(".", r"\.")):
        gone.task(1)


def test_a_revert_in_any_nodes_shape_is_typed_and_a_refusal_is_not_a_revert():
    """Anvil puts the payload in the error's data; Hardhat and Ganache nest it one level down."""
    from arledger.chain.ledger import _refusal
    from arledger.errors import NodeRefused

    payload = "0x" + (keccak(text="LedgerUnknownTask(uint32)")[:4] + encode(["uint32"], [7])).hex()
    decoder = cerr.default_decoder()
    for data in (payload, {"message": "reverted", "data": payload}):
        err = _refusal(NodeRefused("eth_estimateGas", 3, "execution reverted", data), "fundTask", decoder, "call")
        assert type(err) is cerr.LedgerUnknownTask and err.taskId == 7
    refused = _refusal(NodeRefused("eth_estimateGas", -32003, "Insufficient funds"), "fundTask", decoder, "call")
    assert not isinstance(refused, ContractRevert) and str(refused) == "fundTask: the node refused the call: Insufficient funds"
