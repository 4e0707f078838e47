"""Events (ordered, typed, with block hash and log index) and gas from real receipts.

Run with ``-s`` to see the gas table; docs/gas.md states the targets asserted here.
"""

from __future__ import annotations

import pytest

from arledger.chain.ledger import Event
from tests.fixtures.chain import CODE_CID, HOUR

pytestmark = pytest.mark.chain

TRAINER, V1, V2, V3 = 1, 2, 3, 4
GAS_TARGETS = {"commit": 50_000, "reveal": 160_000, "confirm": 80_000, "finalize": 120_000}


def test_gas_of_the_hot_path_is_within_targets(chain):
    tid = chain.create_task()
    chain.register(V1, V2)
    opened = chain.open_claim(tid)
    confirms = [chain.as_(v).confirm(opened.claim_id, [0, 1, 2, 3], 1_500_000) for v in (V1, V2)]
    chain.advance(2 * HOUR + 1)
    fin = chain.as_(V3).finalize(opened.claim_id)
    used = {"commit": opened.commit.gas_used, "reveal": opened.reveal.gas_used,
            "confirm": max(c.gas_used for c in confirms), "finalize": fin.gas_used}
    print("\n  call       gas used   target")
    for name, gas in used.items():
        print(f"  {name:<9}{gas:>9}{GAS_TARGETS[name]:>9}")
    for name, gas in used.items():
        assert 21_000 < gas <= GAS_TARGETS[name], f"{name}: {gas} gas > target {GAS_TARGETS[name]}"
    # the receipt is the source: TxResult.gas_used equals the node's number
    receipt = chain.ledger.rpc.receipt(fin.tx_hash)
    assert receipt.gas_used == fin.gas_used and receipt.block_number == fin.block_number


def test_events_ordered_typed_with_block_data(chain):
    start = chain.ledger.block_number() + 1
    tid = chain.create_task()
    chain.register(V1)
    opened = chain.open_claim(tid)
    chain.as_(V1).confirm(opened.claim_id, [1], 1_500_000)
    end = chain.ledger.block_number()
    evs = chain.ledger.events(start, end)
    assert all(isinstance(e, Event) for e in evs)
    names = [e.name for e in evs]
    assert names == ["TaskCreated", "VerifierRegistered", "ClaimCommitted", "ClaimRevealed", "ClaimConfirmed"]
    keys = [(e.block_number, e.log_index) for e in evs]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for e in evs:
        assert e.block_hash == chain.ledger.block_hash(e.block_number)
        assert e.tx_hash.startswith("0x") and len(e.tx_hash) == 66
    created = evs[0].args
    assert created["taskId"] == tid and created["params"]["quorum"] == 2 and created["pool"] > 0
    conf = evs[-1].args
    assert conf["segments"] == [1] and conf["measuredLoss"] == 1_500_000 and conf["confirmations"] == 1
    assert conf["verifier"] == chain.address(V1)
    # the same events as the transactions' receipts decoded them
    assert evs[3] == opened.reveal.events[0]
    only = chain.ledger.events(start, end, ["ClaimRevealed", "ClaimConfirmed"])
    assert [e.name for e in only] == ["ClaimRevealed", "ClaimConfirmed"]
    assert chain.ledger.events(end + 1, end) == []


def test_claim_revealed_event_gives_code_cid_and_manifest_digest(chain):
    from arstore import cid_from_bytes

    tid = chain.create_task()
    first, second = chain.open_claim(tid), chain.open_claim(tid, loss=1_400_000)
    info = chain.ledger.claim_revealed_event(second.claim_id)
    assert info.claim_id == second.claim_id
    assert info.code_cid == cid_from_bytes(CODE_CID) and info.code_cid.startswith("bafk")
    assert info.manifest_digest == second.manifest_digest != first.manifest_digest
    assert info.commitment == second.commitment
    assert info.block_number == second.reveal.block_number and info.tx_hash == second.reveal.tx_hash
    assert info.timestamp == chain.ledger.block_timestamp(second.reveal.block_number)
    found = chain.ledger.find_reveal(first.commitment, chain.address(TRAINER))
    assert found.args["claimId"] == first.claim_id
    from arledger.errors import ConfigError

    with pytest.raises(ConfigError, match="claim 999"):
        chain.ledger.claim_revealed_event(999)
