"""Typed views (claim, derived states, paging, seeds) and commit/reveal with its reverts."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest

from arledger import merkle
from arledger.chain import errors as cerr
from arledger.chain.ledger import ClaimFields, compute_commitment
from arledger.chain.signer import Transaction
from tests.fixtures.chain import CODE_CID, E, HOUR, STATE_HASHES

pytestmark = pytest.mark.chain

TRAINER, OTHER, V1 = 1, 7, 2
STAKE = E // 10
ROOT = merkle.merkle_root(STATE_HASHES)
DIGEST = hashlib.sha256(b"manifest").digest()


def test_claim_view_and_derived_states(chain):
    tid = chain.create_task()
    opened = chain.open_claim(tid, loss=1_234_567)
    c = chain.ledger.claim(opened.claim_id)
    reveal_ts = chain.ledger.block_timestamp(opened.reveal.block_number)
    assert (c.trainer, c.task_id, c.parent_id, c.num_segments) == (chain.address(TRAINER), tid, 0, 4)
    assert (c.state, c.confirmations, c.merkle_root, c.stake) == ("Open", 0, ROOT, STAKE)
    assert (c.claimed_loss, c.challenge_deadline, c.open_dispute) == (1_234_567, reveal_ts + 2 * HOUR, None)
    assert chain.ledger.claim_state(999) == "None"
    with pytest.raises(cerr.LedgerUnknownClaim) as ei:
        chain.ledger.claim(999)
    assert ei.value.claimId == 999
    # Open -> Finalizable is derived from time alone (nothing is written)
    rpc = chain.ledger.rpc
    rpc.request("evm_setNextBlockTimestamp", [c.challenge_deadline])
    chain.mine()
    assert chain.ledger.claim_state(opened.claim_id) == "Open"  # at the deadline: still Open
    rpc.request("evm_setNextBlockTimestamp", [c.challenge_deadline + 1])
    chain.mine()
    assert chain.ledger.claim_state(opened.claim_id) == "Finalizable"
    assert chain.ledger.claim(opened.claim_id).state == "Finalizable"


def test_task_claims_paging_counts_and_parent(chain):
    a, b = chain.create_task(), chain.create_task()
    total_before = chain.ledger.total_claims()
    ids = [chain.open_claim(a).claim_id, chain.open_claim(b).claim_id]
    ids.append(chain.open_claim(a, parent=ids[0]).claim_id)
    ids.append(chain.open_claim(a, trainer=OTHER).claim_id)
    mine = [ids[0], ids[2], ids[3]]
    assert chain.ledger.task_claims(a) == mine
    assert chain.ledger.task_claims(b) == [ids[1]]
    assert chain.ledger.task_claims(a, offset=1, limit=1) == [ids[2]]
    assert chain.ledger.task_claims(a, offset=1, limit=50) == mine[1:]
    assert chain.ledger.task_claims(a, offset=3) == []
    assert chain.ledger.task_claims(a, offset=0, limit=0) == []
    assert (chain.ledger.claim_count(a), chain.ledger.claim_count(b)) == (3, 1)
    assert chain.ledger.task(a).claim_count == 3
    assert chain.ledger.total_claims() == total_before + 4
    assert chain.ledger.claim(ids[2]).parent_id == ids[0]
    with pytest.raises(cerr.LedgerInvalidParent) as ei:  # a parent from another task
        chain.open_claim(a, parent=ids[1])
    assert ei.value.error_args == {"taskId": a, "parentId": ids[1]}


def test_sample_seed_nonzero_stable_and_matches_event(chain):
    tid = chain.create_task()
    one, two = chain.open_claim(tid), chain.open_claim(tid)
    seed = chain.ledger.sample_seed(one.claim_id)
    assert len(seed) == 32 and seed != bytes(32)
    assert seed == one.reveal.event("ClaimRevealed")["seed"] == chain.ledger.claim(one.claim_id).seed
    chain.mine(3)
    chain.advance(HOUR)
    assert chain.ledger.sample_seed(one.claim_id) == seed  # fixed at reveal, never re-derived
    assert chain.ledger.sample_seed(two.claim_id) != seed


def test_commitment_matches_contract_and_info(chain):
    tid = chain.create_task()
    t = chain.as_(TRAINER)
    salt = os.urandom(32)
    fields = ClaimFields(tid, 0, CODE_CID, DIGEST, ROOT, 4, 1_234_567, salt)
    local = compute_commitment(t.account_address, fields)
    assert local == t.commitment_of(t.account_address, fields)
    # every field is bound, and the trainer: change one, the commitment changes
    assert compute_commitment(chain.address(OTHER), fields) != local
    for name, other in [("task_id", tid + 1), ("parent_id", 1), ("code_cid", CODE_CID + b"\x00"),
                        ("manifest_digest", ROOT), ("merkle_root", DIGEST), ("num_segments", 5),
                        ("claimed_loss", 1_234_568), ("salt", os.urandom(32))]:
        assert compute_commitment(t.account_address, replace(fields, **{name: other})) != local, name
    assert t.commitment_info(local).block_number == 0
    res = t.commit(local)
    assert res.event("ClaimCommitted") == {"commitment": local, "trainer": t.account_address,
                                           "blockNumber": res.block_number}
    info = t.commitment_info(local)
    assert (info.block_number, info.timestamp, info.revealed) == (
        res.block_number, chain.ledger.block_timestamp(res.block_number), False)
    with pytest.raises(cerr.LedgerCommitmentExists) as ei:
        chain.as_(OTHER).commit(local)
    assert ei.value.commitment == local


def test_reveal_reverts_are_typed_with_args(chain):
    tid = chain.create_task()
    t = chain.as_(TRAINER)
    salt = os.urandom(32)
    fields = ClaimFields(tid, 0, CODE_CID, DIGEST, ROOT, 4, 1_000_000, salt)
    c = compute_commitment(t.account_address, fields)
    committed = t.commit(c)
    t.wait_for_block(committed.block_number + 1)
    head = chain.ledger.block_number()
    # wrong salt: another commitment, never committed
    wrong = replace(fields, salt=os.urandom(32))
    with pytest.raises(cerr.LedgerUnknownCommitment) as ei:
        t.reveal(wrong, value=STAKE)
    assert ei.value.commitment == compute_commitment(t.account_address, wrong)
    assert chain.ledger.block_number() == head  # refused at estimate time: nothing was sent
    # someone else revealing the trainer's fields: the trainer is inside the hash
    with pytest.raises(cerr.LedgerUnknownCommitment):
        chain.as_(OTHER).reveal(fields, value=STAKE)
    with pytest.raises(cerr.LedgerStakeTooLow) as ei:
        t.reveal(fields, value=STAKE - 1)
    assert ei.value.error_args == {"account": t.account_address, "stake": STAKE - 1, "required": STAKE}
    t.reveal(fields, value=STAKE)
    assert t.commitment_info(c).revealed is True
    with pytest.raises(cerr.LedgerCommitmentRevealed) as ei:
        t.reveal(fields, value=STAKE)
    assert ei.value.commitment == c


def test_reveal_after_window_is_refused(chain):
    tid = chain.create_task()
    t = chain.as_(TRAINER)
    salt = os.urandom(32)
    fields = ClaimFields(tid, 0, CODE_CID, DIGEST, ROOT, 4, 1_000_000, salt)
    committed = t.commit(compute_commitment(t.account_address, fields))
    chain.advance(HOUR + 1)
    with pytest.raises(cerr.LedgerRevealWindowClosed) as ei:
        t.reveal(fields, value=STAKE)
    assert ei.value.deadline == chain.ledger.block_timestamp(committed.block_number) + HOUR


def test_reveal_in_commit_block_is_refused(chain):
    """With automine off the commit sits in the pending block; a reveal estimated there is too early."""
    tid = chain.create_task()
    t = chain.as_(TRAINER)
    salt = os.urandom(32)
    fields = ClaimFields(tid, 0, CODE_CID, DIGEST, ROOT, 4, 1_000_000, salt)
    c = compute_commitment(t.account_address, fields)
    rpc = chain.ledger.rpc
    rpc.request("evm_setAutomine", [False])
    try:  # sent, not awaited: it stays pending until automine is back
        tx = Transaction(rpc.chain_id(), rpc.nonce(t.account_address), 100_000, t.address,
                         data=t.abi.call_data("commit", [c]), gas_price=rpc.gas_price())
        rpc.send_raw(t.account.sign_transaction(tx))
        with pytest.raises((cerr.LedgerRevealTooEarly, cerr.LedgerUnknownCommitment)):
            t.reveal(fields, value=STAKE)
    finally:
        rpc.request("evm_setAutomine", [True])
        chain.mine()
    info = t.commitment_info(c)
    assert info.block_number > 0 and info.revealed is False
