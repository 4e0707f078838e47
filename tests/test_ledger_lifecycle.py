"""Task funding and the undisputed claim outcomes through ``Ledger`` against a real anvil.

Accepted (improving, then not improving) and Expired, with the money checked at each
step: the ledger's balances, the pool, and the ether a withdrawal really moves.
"""

from __future__ import annotations

import pytest

from arledger.chain import errors as cerr
from arledger.chain.units import parse_amount
from tests.fixtures.chain import E, HOUR, task_params

pytestmark = pytest.mark.chain

SPONSOR, TRAINER, V1, V2, V3 = 0, 1, 2, 3, 4
STAKE, FEE = E // 10, E // 100


def test_task_create_and_fund_pool_accounting(chain):
    count_before = chain.ledger.task_count()
    tid = chain.create_task(pool=2 * E)
    funded = chain.as_(V1).fund_task(tid, parse_amount("0.5eth"))
    assert funded.event("TaskFunded") == {"taskId": tid, "funder": chain.address(V1), "amount": E // 2,
                                          "pool": 2 * E + E // 2}
    t = chain.ledger.task(tid)
    p = task_params()
    assert chain.ledger.task_count() == count_before + 1
    assert (t.task_id, t.sponsor, t.spec_digest) == (tid, chain.address(SPONSOR), p.spec_digest)
    assert t.pool == 2 * E + E // 2
    assert (t.reward_per_improvement, t.verifier_fee, t.min_trainer_stake, t.quorum) == (E, FEE, STAKE, 2)
    assert (t.reveal_window, t.challenge_window, t.voting_window) == (HOUR, 2 * HOUR, HOUR)
    assert (t.best_claim_id, t.best_loss, t.claim_count) == (0, 2_000_000, 0)
    assert chain.ledger.best_claim(tid) == (0, 2_000_000)
    with pytest.raises(cerr.LedgerUnknownTask) as ei:
        chain.as_(V1).fund_task(tid + 7, E)
    assert ei.value.error_args == {"taskId": tid + 7}
    with pytest.raises(cerr.LedgerZeroValue):
        chain.as_(V1).fund_task(tid, 0)
    with pytest.raises(cerr.LedgerInvalidTaskParam) as ei:  # stake must cover quorum fees
        chain.as_(SPONSOR).create_task(task_params(min_trainer_stake=FEE), value=0)
    assert ei.value.field == "minTrainerStake"
    assert chain.ledger.task(tid).pool == 2 * E + E // 2  # refused calls changed nothing


def test_accepted_improving_claim_moves_best_pays_and_withdraws(chain):
    tid = chain.create_task(pool=5 * E)
    chain.register(V1, V2, V3)
    cid = chain.open_claim(tid, loss=1_500_000).claim_id
    assert chain.ledger.claim_state(cid) == "Open"
    for v in (V1, V2):
        chain.as_(v).confirm(cid, [1, 3], 1_500_000)
    assert chain.ledger.claim(cid).confirmations == 2
    assert chain.ledger.has_confirmed(cid, chain.address(V1)) and not chain.ledger.has_confirmed(cid, chain.address(V3))
    with pytest.raises(cerr.LedgerQuorumReached) as ei:
        chain.as_(V3).confirm(cid, [0], 1_500_000)
    assert ei.value.error_args == {"claimId": cid, "quorum": 2}
    with pytest.raises(cerr.LedgerWrongClaimState):  # too early: still Open
        chain.ledger.finalize(cid)
    chain.advance(2 * HOUR + 1)
    assert chain.ledger.claim_state(cid) == "Finalizable"
    fin = chain.as_(V3).finalize(cid)
    assert chain.ledger.claim_state(cid) == "Accepted"
    assert chain.ledger.best_claim(tid) == (cid, 1_500_000)
    assert fin.event("BestClaimChanged") == {"taskId": tid, "claimId": cid, "loss": 1_500_000,
                                             "previousClaimId": 0, "previousLoss": 2_000_000}
    assert fin.event("ClaimFinalized")["reward"] == E and fin.event("ClaimFinalized")["improved"] is True
    # fees (2 x 0.01) come from the pool, the reward (1 eth) too; the stake comes back whole
    assert chain.ledger.task(tid).pool == 5 * E - E - 2 * FEE
    trainer = chain.as_(TRAINER)
    assert trainer.balance_of(chain.address(TRAINER)) == E + STAKE
    # confirmers pull their fee once; the binding is released
    for v in (V1, V2):
        settled = chain.as_(v).settle(cid)
        assert settled.event("Settled")["amount"] == FEE
        assert chain.ledger.balance_of(chain.address(v)) == FEE
        assert chain.ledger.verifier_info(chain.address(v)).bindings == 0
    assert chain.as_(V1).settle(cid).events == []  # a repeat is a no-op
    with pytest.raises(cerr.LedgerNotParticipant):
        chain.as_(V3).settle(cid)
    # withdraw moves real ether: balance after = before + owed - gas fee
    before = chain.native_balance(TRAINER)
    w = trainer.withdraw()
    gas_fee = chain.ledger.rpc.receipt(w.tx_hash).fee
    assert chain.native_balance(TRAINER) == before + E + STAKE - gas_fee
    assert w.event("Withdrawn") == {"account": chain.address(TRAINER), "amount": E + STAKE}
    assert trainer.balance_of(chain.address(TRAINER)) == 0
    with pytest.raises(cerr.LedgerNothingToWithdraw) as ei:
        trainer.withdraw()
    assert ei.value.account == chain.address(TRAINER)


def test_non_improving_claim_accepted_without_reward_fees_from_stake(chain):
    tid = chain.create_task(pool=5 * E)
    chain.register(V1, V2)
    cid = chain.open_claim(tid, loss=1_999_500).claim_id  # better, but by less than minImprovement
    for v in (V1, V2):
        chain.as_(v).confirm(cid, [0], 1_999_500)
    chain.advance(2 * HOUR + 1)
    fin = chain.ledger.finalize(cid)
    assert chain.ledger.claim_state(cid) == "Accepted"
    ev = fin.event("ClaimFinalized")
    assert (ev["improved"], ev["reward"], ev["trainerPaid"]) == (False, 0, STAKE - 2 * FEE)
    assert "BestClaimChanged" not in [e.name for e in fin.events]
    assert chain.ledger.best_claim(tid) == (0, 2_000_000)
    assert chain.ledger.task(tid).pool == 5 * E  # spam cannot drain the pool
    assert chain.ledger.balance_of(chain.address(TRAINER)) == STAKE - 2 * FEE
    assert chain.as_(V1).settle(cid).event("Settled")["amount"] == FEE


def test_expired_without_quorum_returns_stake(chain):
    tid = chain.create_task()
    chain.register(V1)
    cid = chain.open_claim(tid).claim_id
    chain.as_(V1).confirm(cid, [2], 1_500_000)
    chain.advance(2 * HOUR + 1)
    with pytest.raises(cerr.LedgerWrongClaimState) as ei:  # confirming after the deadline
        chain.as_(V2).confirm(cid, [1], 1)
    assert ei.value.error_args["current"] == 3  # Finalizable
    ev = chain.ledger.finalize(cid).event("ClaimFinalized")
    assert chain.ledger.claim_state(cid) == "Expired"
    assert (ev["outcome"], ev["trainerPaid"], ev["reward"]) == (6, STAKE, 0)
    assert chain.ledger.balance_of(chain.address(TRAINER)) == STAKE
    assert chain.ledger.best_claim(tid) == (0, 2_000_000)
    assert chain.as_(V1).settle(cid).event("Settled")["amount"] == 0  # expired pays no fee
    assert chain.ledger.verifier_info(chain.address(V1)).bindings == 0
