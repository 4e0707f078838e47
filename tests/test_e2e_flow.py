"""End to end: claims through `artrain submit` and `arverify watch` on a real anvil.

One task (digits, 20 steps in 2 segments of 10, quorum 2) and three verifiers (dev
accounts 3, 4, 5) that run ``arverify watch --once --confirmations 0`` in turn; every
outcome is asserted on chain: claim states, events, ledger balances, the best pointer.
The artifact store is the embedded one under ``$ARLEDGER_HOME/store``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arledger import manifest as mf, merkle
from arledger.attacks import data_substitution, forged_jump
from arledger.chain.ledger import Evidence
from arstore import open_store
from tests.test_e2e_support import DIGITS, E, make_world, SEGMENT_STEPS, STEPS

BOND = 5 * 10**16  # TERMS challenge_bond
STAKE = 10**17  # TERMS min_trainer_stake (the default stake of `artrain submit`)
FEE = 10**16  # TERMS verifier_fee


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "e2e-flow")


@pytest.fixture(scope="module")
def task(world):
    task_id = world.create_task()
    for v in (3, 4, 5, 8):
        out = world.arverify("register", "--stake", "1eth", "--dev-account", v, "--json")
        assert out["stake"] == E
    return task_id


@pytest.fixture(scope="module")
def honest_run(world, task):
    """The honest run, trained through `artrain run` (public command)."""
    out = world.tmp / "runs" / "honest"
    res = world.artrain("run", DIGITS, "--steps", STEPS, "--segment-steps", SEGMENT_STEPS, "--seed", 1,
                        "--out", out, "--store", world.store_spec, "--json")
    assert (out / "manifest.json").is_file(), res
    world.runs["honest"] = out
    return out


@pytest.fixture(scope="module")
def accepted(world, task, honest_run):
    """Trainer 1's honest claim, verified by the watchers, past its window: the new best."""
    before = {i: world.owed(i) for i in (1, 3, 4, 5)}
    sub = world.submit(honest_run, trainer=1)
    first = world.watch()
    status_open = world.artrain("status", sub["claim_id"], "--json")
    last = world.close_windows()
    return {"sub": sub, "before": before, "first": first, "last": last, "status_open": status_open}


def _decisions(records: dict[int, list[dict]], claim_id: int) -> dict[int, list[str]]:
    return {v: [r["decision"] for r in recs if r.get("claim") == claim_id and "dispute" not in r]
            for v, recs in records.items()}


def _tx_cost(rpc, tx_hash: str) -> int:
    return rpc.receipt(tx_hash).fee


def test_honest_claim_accepted_best_moves_and_rewards_withdrawn(world, accepted):
    rpc = world.ledger.rpc
    claim_id = accepted["sub"]["claim_id"]
    assert accepted["status_open"]["state"] == "Open" and accepted["status_open"]["confirmations"] == 2
    # Two verifiers replay and confirm; the third sees the quorum reached and sends nothing.
    assert _decisions(accepted["first"], claim_id) == {3: ["confirm"], 4: ["confirm"], 5: []}
    confirmed = world.events("ClaimConfirmed", claimId=claim_id)
    assert sorted(e["verifier"].lower() for e in confirmed) == sorted(world.chain.address(i).lower() for i in (3, 4))
    assert all(list(e["segments"]) == [0, 1] for e in confirmed)  # every segment replayed (sampling covers all)

    assert world.ledger.claim_state(claim_id) == "Accepted"
    best = world.artrain("best", "--task", world.task_id, "--store", world.store_spec, "--json")
    assert best["claim_id"] == claim_id
    assert best["loss_micro"] == accepted["sub"]["claimed_loss_micro"] < world.ledger.task(world.task_id).baseline_loss
    assert best["manifest_cid"] == accepted["sub"]["manifest_cid"]
    changed = world.events("BestClaimChanged", taskId=world.task_id)
    assert [(e["claimId"], e["previousClaimId"]) for e in changed] == [(claim_id, 0)]
    rows = world.artrain("claims", "--task", world.task_id, "--json")
    rows = rows if isinstance(rows, list) else [rows]
    row = next(r for r in rows if r.get("claim_id") == claim_id)
    assert row["state"] == "Accepted" and row["improved"] is True and row["reward"] == E

    # Ledger balances: trainer gets stake back + reward; each confirmer its fee; the idle verifier nothing.
    before = accepted["before"]
    assert world.owed(1) - before[1] == STAKE + E
    assert world.owed(3) - before[3] == FEE and world.owed(4) - before[4] == FEE
    assert world.owed(5) == before[5]

    # Withdraw through the commands: native balances move by exactly the owed amount minus gas.
    for i, cmd in ((1, world.artrain), (3, world.arverify)):
        owed, native = world.owed(i), world.chain.native_balance(i)
        out = cmd("withdraw", "--dev-account", i, "--json")
        assert out["withdrawn"] == owed > 0
        assert world.chain.native_balance(i) == native + owed - _tx_cost(rpc, out["tx"])
        assert world.owed(i) == 0
    assert world.artrain("withdraw", "--dev-account", 1, "--json")["withdrawn"] == 0

    # The best model downloads and is byte-identical to the trainer's final weights.
    dest = world.tmp / "best"
    got = world.artrain("best", "--task", world.task_id, "--download", dest, "--store", world.store_spec, "--json")
    assert got["claim_id"] == claim_id
    assert (dest / "weights.safetensors").read_bytes() == (world.runs["honest"] / "final.safetensors").read_bytes()
    assert (dest / "code" / "train.py").is_file() and (dest / "manifest.json").is_file()


def test_non_improving_claim_is_accepted_without_reward(world, accepted, honest_run):
    """The same result again (another trainer, same loss): not better than best - eps -> no reward."""
    best_before = world.ledger.best_claim(world.task_id)
    pool_before = world.ledger.task(world.task_id).pool
    owed_before = world.owed(6)
    sub = world.submit(honest_run, trainer=6)
    assert sub["claimed_loss_micro"] == best_before[1]
    world.watch()
    world.close_windows()
    cid = sub["claim_id"]
    assert world.ledger.claim_state(cid) == "Accepted"
    fin = world.events("ClaimFinalized", claimId=cid)
    assert len(fin) == 1 and fin[0]["improved"] is False and fin[0]["reward"] == 0
    assert world.ledger.best_claim(world.task_id) == best_before
    assert world.ledger.task(world.task_id).pool == pool_before
    # the stake comes back less the two confirmers' fees (a non-improving claim pays them, not the pool)
    assert world.owed(6) - owed_before == STAKE - 2 * FEE


def _dispute_outcome(world, claim_id: int) -> tuple[dict, dict]:
    ch = world.events("ClaimChallenged", claimId=claim_id)
    assert len(ch) == 1, ch
    res = world.events("DisputeResolved", claimId=claim_id)
    assert len(res) == 1, res
    return ch[0], res[0]


def _assert_caught(world, claim_id: int, trainer: int, segment: int, kind: str = "Segment",
                   before: dict | None = None) -> None:
    """Challenged by verifier 3, upheld by 4 and 5, claim Rejected, trainer's stake split as the contract says."""
    ch, res = _dispute_outcome(world, claim_id)
    assert ch["challenger"].lower() == world.chain.address(3).lower()
    d = world.ledger.dispute(ch["disputeId"])
    assert (d.kind, d.segment) == (kind, segment)
    votes = world.events("DisputeVoted", disputeId=ch["disputeId"])
    assert sorted((v["voter"].lower(), v["uphold"]) for v in votes) == sorted(
        (world.chain.address(i).lower(), True) for i in (4, 5))
    assert world.ledger.dispute_state(ch["disputeId"]) == "Upheld"
    assert world.ledger.claim_state(claim_id) == "Rejected"
    assert world.events("ClaimConfirmed", claimId=claim_id) == []
    assert world.events("BestClaimChanged", claimId=claim_id) == []
    if before is not None:
        # pot = the trainer's stake (no confirmers to slash); each of the 2 voters gets pot/2/2;
        # the challenger the rest plus its bond; the trainer nothing.
        per_voter = (STAKE // 2) // 2
        assert world.owed(trainer) == before[trainer]
        assert world.owed(3) - before[3] == STAKE - 2 * per_voter + BOND
        assert world.owed(4) - before[4] == per_voter and world.owed(5) - before[5] == per_voter


def test_forged_segment_is_challenged_upheld_and_slashed(world, accepted):
    run = world.train("forged", seed=2, train_segment=forged_jump([0]))
    before = {i: world.owed(i) for i in (2, 3, 4, 5)}
    sub = world.submit(run, trainer=2)
    first = world.watch()
    assert _decisions(first, sub["claim_id"])[3] == ["challenge"]
    assert [r["decision"] for r in first[4] + first[5] if r.get("claim") == sub["claim_id"]] == [
        "vote-uphold", "vote-uphold"]
    world.close_windows()
    _assert_caught(world, sub["claim_id"], 2, segment=0, before=before)


def test_data_substitution_is_caught(world, accepted):
    """Segment 1 trained on the validation split. Deterministic: the task's sampling
    (random_segments=2 on a 2-segment claim) makes every verifier replay every segment,
    so the substituted segment is always among those replayed."""
    spec = world.artrain("task", "show", world.task_id, "--store", world.store_spec, "--json")["spec"]
    assert spec["sampling"]["random_segments"] >= STEPS // SEGMENT_STEPS
    run = world.train("subst", seed=3, train_segment=data_substitution([1]))
    before = {i: world.owed(i) for i in (7, 3, 4, 5)}
    sub = world.submit(run, trainer=7)
    world.watch()
    world.close_windows()
    _assert_caught(world, sub["claim_id"], 7, segment=1, before=before)


def test_unavailable_artifact_is_challenged_and_rejected(world, accepted):
    """The trainer pins to its own store and only part of it reaches the verifiers' store:
    every object but checkpoint 1. The verifier challenges kind Artifact; voters uphold."""
    shared = Path(world.store_spec[len("embedded:"):])
    own = world.tmp / "trainer9-store"
    shutil.copytree(shared, own)  # the trainer fetched the task's spec, data and baseline code
    own_spec = f"embedded:{own}"
    run = world.train("private", seed=4, store_spec=own_spec)
    missing = mf.load(run / "manifest.json").boundaries[1].checkpoint_cid
    copied = 0
    for src in list((own / "objects").rglob("*")) + list((own / "dirs").rglob("*")):
        if src.is_file() and src.name != missing:
            dst = shared / src.relative_to(own)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                shutil.copyfile(src, dst)
                copied += 1
    assert not (shared / "objects" / missing[-2:] / missing).exists()
    before = {i: world.owed(i) for i in (9, 3, 4, 5)}
    sub = world.submit(run, trainer=9, store_spec=own_spec)
    # the claim manifest is new (it names the trainer): publish it too, as a partial mirror would
    open_store(world.store_spec).add_bytes((Path(sub["run_dir"]) / "claim-manifest.json").read_bytes())
    first = world.watch()
    assert any("unavailable" in r["reason"] for r in first[3] if r.get("claim") == sub["claim_id"])
    world.close_windows()
    _assert_caught(world, sub["claim_id"], 9, segment=1, kind="Artifact", before=before)


def test_false_challenge_is_dismissed_and_challenger_slashed(world, accepted, honest_run):
    """A lying verifier (8) challenges an honest claim with a made-up end state and valid
    Merkle proofs of both boundaries; the honest verifiers replay the segment and dismiss;
    the claim reopens, is confirmed and accepted; the liar loses its bond."""
    sub = world.submit(honest_run, trainer=1)
    cid = sub["claim_id"]
    m = mf.load(Path(sub["run_dir"]) / "claim-manifest.json")  # what the chain's Merkle root commits to
    leaves = mf.leaf_hashes(m.boundaries)
    made_up = bytes.fromhex("ab" * 32)
    tx = world.chain.as_(8).challenge(cid, Evidence("Segment", 0, leaves[0], leaves[1], merkle.merkle_proof(leaves, 0),
                                               merkle.merkle_proof(leaves, 1), made_up))
    assert tx.event("ClaimChallenged")["claimId"] == cid
    before = {i: world.owed(i) for i in (1, 3, 4, 5, 8)}
    first = world.watch()
    votes = [r["decision"] for v in (3, 4, 5) for r in first[v] if "dispute" in r]
    assert votes == ["vote-dismiss"] * 3
    world.close_windows()  # resolves: dismissed -> the claim is Open again, verifiers confirm it
    ch, res = _dispute_outcome(world, cid)
    assert world.ledger.dispute_state(ch["disputeId"]) == "Dismissed"
    per_voter = (BOND // 2) // 3
    assert world.owed(8) == before[8]  # the bond is lost
    assert world.owed(1) - before[1] == BOND - 3 * per_voter  # the trainer gets the rest of the bond
    for v in (3, 4, 5):
        assert world.owed(v) - before[v] == per_voter
    world.close_windows()  # the reopened claim's extended window passes
    assert world.ledger.claim_state(cid) == "Accepted"
    assert len(world.events("ClaimConfirmed", claimId=cid)) == 2

