"""Challenges and disputes through ``Ledger``: upheld, dismissed, inconclusive, and the
verifier bindings they create. Segment challenges carry real Merkle proofs (arledger.merkle)
over fake state hashes."""

from __future__ import annotations

import hashlib

import pytest

from arledger import merkle
from arledger.chain import errors as cerr
from arledger.chain.ledger import Evidence
from tests.fixtures.chain import E, HOUR, STATE_HASHES

pytestmark = pytest.mark.chain

TRAINER, V1, V2, V3, V4, CHALLENGER = 1, 2, 3, 4, 5, 6
STAKE, BOND, V_STAKE = E // 10, E // 50, E
OBSERVED = hashlib.sha256(b"a different end state").digest()


def segment_challenge(chain, who, claim_id, segment=2, observed=OBSERVED, **kw):
    return chain.as_(who).challenge(claim_id, Evidence(
        "Segment", segment, STATE_HASHES[segment], STATE_HASHES[segment + 1],
        merkle.merkle_proof(STATE_HASHES, segment), merkle.merkle_proof(STATE_HASHES, segment + 1), observed), **kw)


def test_upheld_slashes_trainer_and_confirmer_pays_challenger_and_majority(chain):
    tid = chain.create_task()
    chain.register(V1, V2, V3, V4, CHALLENGER, stake=V_STAKE)
    cid = chain.open_claim(tid).claim_id
    chain.as_(V1).confirm(cid, [2], 1_500_000)  # a confirmer that will be proven wrong
    res = segment_challenge(chain, CHALLENGER, cid)
    did = chain.ledger.dispute_id(cid, "Segment", 2)
    assert _hex(res.event("ClaimChallenged")["disputeId"]) == did
    assert chain.ledger.claim_state(cid) == "Disputed" and chain.ledger.claim(cid).open_dispute == did
    d = chain.ledger.dispute(did)
    assert (d.claim_id, d.kind, d.segment, d.state, d.challenger) == (cid, "Segment", 2, "Voting",
                                                                      chain.address(CHALLENGER))
    assert d.voting_deadline == d.opened_at + HOUR
    with pytest.raises(cerr.LedgerWrongClaimState) as ei:
        chain.as_(V2).confirm(cid, [0], 1)
    assert ei.value.error_args == {"claimId": cid, "current": 2, "expected": 1}
    for conflicted in (CHALLENGER, V1, TRAINER):  # challenger, confirmer, trainer may not vote
        with pytest.raises((cerr.LedgerConflictOfInterest, cerr.LedgerNotVerifier)):
            chain.as_(conflicted).vote(did, True)
    for v, up in ((V2, True), (V3, True), (V4, False)):
        chain.as_(v).vote(did, up)
    assert chain.ledger.has_voted(did, chain.address(V2))
    with pytest.raises(cerr.LedgerAlreadyVoted):
        chain.as_(V2).vote(did, False)
    d = chain.ledger.dispute(did)
    assert (d.votes_uphold, d.votes_dismiss, d.state) == (2, 1, "Voting")
    with pytest.raises(cerr.LedgerWrongDisputeState):
        chain.ledger.resolve_dispute(did)
    chain.advance(HOUR + 1)
    assert chain.ledger.dispute_state(did) == "Resolvable"
    resolved = chain.ledger.resolve_dispute(did)
    pot = STAKE + BOND  # trainer stake + the confirmer's slash min(bond, stake)
    per_voter = (pot // 2) // 2
    ev = resolved.event("DisputeResolved")
    assert (ev["outcome"], ev["slashed"], ev["perVoterShare"]) == (3, BOND, per_voter)
    assert ev["challengerPaid"] == pot - 2 * per_voter + BOND
    assert [e.name for e in resolved.events].count("VerifierSlashed") == 1
    assert chain.ledger.dispute_state(did) == "Upheld" and chain.ledger.claim_state(cid) == "Rejected"
    assert chain.ledger.claim(cid).open_dispute is None
    # money: trainer lost the stake, challenger got bond + its part of the pot, confirmer slashed
    assert chain.ledger.balance_of(chain.address(TRAINER)) == 0
    assert chain.ledger.balance_of(chain.address(CHALLENGER)) == pot - 2 * per_voter + BOND
    assert chain.ledger.verifier_info(chain.address(V1)).stake == V_STAKE - BOND
    assert chain.as_(V1).settle(cid).event("Settled")["amount"] == 0  # rejected: no fee
    for v in (V2, V3):
        assert chain.as_(v).settle_vote(did).event("VoteSettled")["amount"] == per_voter
        assert chain.ledger.balance_of(chain.address(v)) == per_voter
    assert chain.as_(V4).settle_vote(did).event("VoteSettled")["amount"] == 0  # minority
    assert chain.as_(V2).settle_vote(did).events == []  # repeat: no-op
    assert chain.ledger.best_claim(tid) == (0, 2_000_000)


def test_dismissed_slashes_challenger_and_reopens_with_extended_deadline(chain):
    tid = chain.create_task()
    chain.register(V2, V3, CHALLENGER)
    cid = chain.open_claim(tid).claim_id
    deadline = chain.ledger.claim(cid).challenge_deadline
    segment_challenge(chain, CHALLENGER, cid)
    did = chain.ledger.dispute_id(cid, "Segment", 2)
    opened_at = chain.ledger.dispute(did).opened_at
    for v in (V2, V3):
        chain.as_(v).vote(did, False)
    chain.advance(HOUR + 1)
    resolved = chain.ledger.resolve_dispute(did)
    resolved_at = chain.ledger.block_timestamp(resolved.block_number)
    assert chain.ledger.dispute_state(did) == "Dismissed"
    assert chain.ledger.claim_state(cid) == "Open"
    new_deadline = deadline + (resolved_at - opened_at)
    assert chain.ledger.claim(cid).challenge_deadline == new_deadline
    assert resolved.event("DisputeResolved")["newChallengeDeadline"] == new_deadline
    per_voter = (BOND // 2) // 2
    assert chain.ledger.balance_of(chain.address(CHALLENGER)) == 0  # bond lost
    assert chain.ledger.balance_of(chain.address(TRAINER)) == BOND - 2 * per_voter
    assert chain.as_(V3).settle_vote(did).event("VoteSettled")["amount"] == per_voter
    with pytest.raises(cerr.LedgerDisputeExists) as ei:  # the same (claim, kind, segment) never again
        segment_challenge(chain, CHALLENGER, cid)
    assert _hex(ei.value.error_args["disputeId"]) == did
    # the claim lives on: it can still be confirmed (another segment challenged, etc.)
    chain.as_(V2).confirm(cid, [0], 1_500_000)
    assert chain.ledger.claim(cid).confirmations == 1


def test_inconclusive_refunds_everyone_and_expires(chain):
    tid = chain.create_task()
    chain.register(V1, CHALLENGER)
    cid = chain.open_claim(tid).claim_id
    chain.as_(V1).confirm(cid, [0], 1_500_000)
    chain.as_(CHALLENGER).challenge(cid, Evidence("Artifact"))  # bond looked up from the task
    did = chain.ledger.dispute_id(cid, "Artifact", 0)
    chain.advance(HOUR + 1)
    assert chain.ledger.dispute_state(did) == "Resolvable"
    chain.ledger.resolve_dispute(did)
    assert chain.ledger.dispute_state(did) == "Inconclusive"
    assert chain.ledger.claim_state(cid) == "Expired"
    assert chain.ledger.balance_of(chain.address(CHALLENGER)) == BOND
    assert chain.ledger.balance_of(chain.address(TRAINER)) == STAKE
    assert chain.ledger.verifier_info(chain.address(V1)).stake == E  # confirmer not slashed


def test_unregister_blocked_while_bound_then_allowed(chain):
    tid = chain.create_task()
    chain.register(V1)
    cid = chain.open_claim(tid).claim_id
    chain.as_(V1).confirm(cid, [0], 1_500_000)
    with pytest.raises(cerr.LedgerVerifierBound) as ei:
        chain.as_(V1).unregister_verifier()
    assert ei.value.error_args == {"verifier": chain.address(V1), "bindings": 1}
    with pytest.raises(cerr.LedgerWrongClaimState):  # settle needs a terminal claim
        chain.as_(V1).settle(cid)
    chain.advance(2 * HOUR + 1)
    chain.ledger.finalize(cid)  # expired: one confirmation, quorum 2
    chain.as_(V1).settle(cid)
    res = chain.as_(V1).unregister_verifier()
    assert res.event("VerifierUnregistered")["stakeReturned"] == E
    assert chain.ledger.verifier_info(chain.address(V1)).registered is False
    assert chain.ledger.balance_of(chain.address(V1)) == E
    with pytest.raises(cerr.LedgerNotVerifier):
        chain.as_(V1).unregister_verifier()


def test_challenge_checks_proofs_and_mismatch(chain):
    tid = chain.create_task()
    chain.register(CHALLENGER)
    cid = chain.open_claim(tid).claim_id
    bad = chain.as_(CHALLENGER)
    with pytest.raises(cerr.LedgerInvalidProof) as ei:  # end proof of the wrong leaf
        bad.challenge(cid, Evidence("Segment", 1, STATE_HASHES[1], STATE_HASHES[2],
                                    merkle.merkle_proof(STATE_HASHES, 1), merkle.merkle_proof(STATE_HASHES, 3),
                                    OBSERVED))
    assert ei.value.error_args == {"claimId": cid, "index": 2}
    with pytest.raises(cerr.LedgerNoMismatch):
        segment_challenge(chain, CHALLENGER, cid, observed=STATE_HASHES[3])
    with pytest.raises(cerr.LedgerInvalidSegment) as ei:  # 4 segments: 0..3
        bad.challenge(cid, Evidence("Segment", 4, STATE_HASHES[4], STATE_HASHES[4], [], [], OBSERVED))
    assert ei.value.error_args == {"segment": 4, "numSegments": 4}
    with pytest.raises(cerr.LedgerConflictOfInterest):  # the trainer can't challenge itself
        segment_challenge(chain, TRAINER, cid)
    assert chain.ledger.claim_state(cid) == "Open"
    # the same proofs verify on chain
    assert chain.ledger.verify_boundary(cid, 2, STATE_HASHES[2], merkle.merkle_proof(STATE_HASHES, 2))
    assert not chain.ledger.verify_boundary(cid, 2, OBSERVED, merkle.merkle_proof(STATE_HASHES, 2))


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()
