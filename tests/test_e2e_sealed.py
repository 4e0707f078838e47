"""End to end: a sealed task (docs/sealed-evaluation.md) on a real anvil, through the public commands.

One digits task with three sealed rounds, its private data drawn by ``artrain task heldout``:

- round 0: an honest claim is revealed without a loss, waits for its shard, is scored on it
  against the baseline, confirmed by verifiers (who evaluate both on the shard), and becomes
  the best;
- round 1: a memorising claim that carries every public byte of the task (train and val
  splits, round 0's opened shard) in its code: its number on the public split is near zero,
  on round 1's shard it is no better than the honest incumbent, and the pointer stays;
- round 2: the sponsor never opens the shard: the claim's stake comes back with the
  round's share of the sponsor's bond.

Refused along the way: a shard opened before its round closes, a shard with a wrong digest
(a bad proof), a commit naming an older round, a shard file corrupted on the sponsor's disk.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from arledger import manifest as mf
from arledger.agent.loop import Agent, AgentConfig
from arledger.agent.search import SearchProposer
from arledger.attacks import memorising_digits
from arledger.chain.errors import LedgerInvalidShardProof, LedgerWrongRound
from arledger.chain.ledger import ClaimFields
from arstore import cid_to_bytes, open_store
from tests.test_e2e_support import DIGITS, E, make_world, one_line_error, TERMS

ROUND, GRACE = 4000, 1000
BOND = E // 2
STAKE = E // 10  # TERMS min_trainer_stake


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "e2e-sealed")


@pytest.fixture(scope="module")
def task(world):
    private = world.tmp / "private.bin"
    out = world.artrain("task", "heldout", "digits", "--rounds", 3, "--out", private, "--json")
    assert out["bytes"] == private.stat().st_size > 0
    terms = {**TERMS, "rounds": 3, "round_length": ROUND, "open_grace": GRACE, "sponsor_bond": "0.5eth"}
    task_id = world.create_task(heldout=str(private), terms=terms)
    for v in (3, 4, 5):
        world.arverify("register", "--stake", "1eth", "--dev-account", v, "--json")
    return task_id


def _to(world, task_id: int, offset: int) -> None:
    """Chain time to ``offset`` seconds after the task's rounds started."""
    seal = world.ledger.seal(task_id)
    world.chain.advance(max(0, seal.start + offset - world.ledger.block_timestamp()))


def _memoriser(world, task_id: int) -> Path:
    """The digits template whose model, in eval mode, answers every image it has seen in a
    public byte (train, val, the opened shard 0) with its label: a lookup carried in the code."""
    store = open_store(world.store_spec)
    datasets = world.artrain("task", "show", task_id, "--store", world.store_spec, "--json")["spec"]["datasets"]
    blobs = [bytes(store.cat(cid)) for cid in datasets.values()]
    blobs.append(bytes(store.cat(world.ledger.shard(task_id, 0).cid)))
    return memorising_digits(DIGITS, blobs, world.tmp / "memoriser")


@pytest.fixture(scope="module")
def round0(world, task):
    """The honest claim of round 0, from reveal to the best."""
    honest = world.train("honest")
    sub = world.submit(honest, trainer=1)
    seen = {"sub": sub, "status": world.artrain("status", sub["claim_id"], "--json")}
    seen["early"] = world.artrain("task", "reveal", task, "--round", 0, "--store", world.store_spec,
                                  "--dev-account", 0, ok=False)
    seen["watch_sealed"] = world.watch()
    _to(world, task, ROUND)
    wrong = hashlib.sha256(b"not the shard").digest()
    with pytest.raises(LedgerInvalidShardProof):  # a digest the sponsor did not commit: no proof makes it
        world.chain.as_(0).open_shard(task, 0, wrong, bytes.fromhex("01551220") + wrong, [bytes(32)])
    seen["opened"] = world.artrain("task", "reveal", task, "--store", world.store_spec, "--dev-account", 0, "--json")
    seen["scored"] = world.artrain("submit", sub["run_dir"], "--task", task, "--store", world.store_spec,
                                   "--dev-account", 1, "--json")
    seen["first"] = world.watch()
    seen["last"] = world.close_windows()
    return seen


def test_a_sealed_claim_waits_for_its_shard_then_wins_on_it(world, task, round0):
    cid = round0["sub"]["claim_id"]
    assert round0["sub"]["sealed"]["stage"] == "waiting" and round0["sub"]["claimed_loss_micro"] == 0
    st = round0["status"]
    assert st["state"] == "Sealed" and st["sealed"]["round"] == 0 and st["sealed"]["round_state"] == "running"
    one_line_error(round0["early"], "round 0", "closes at")
    assert all(recs == [] for recs in round0["watch_sealed"].values())  # nothing to verify before the loss
    assert [o["round"] for o in (round0["opened"] if isinstance(round0["opened"], list) else [round0["opened"]])] == [0]
    s = round0["scored"]["sealed"]
    assert s["stage"] == "scored" and s["incumbent_id"] == 0
    assert s["claimed_loss_micro"] + world.ledger.task(task).min_improvement <= s["incumbent_loss_micro"]
    confirms = [r for recs in round0["first"].values() for r in recs if r.get("claim") == cid]
    assert [r["decision"] for r in confirms].count("confirm") == 2, confirms
    assert all(r["measured_loss_micro"] == s["claimed_loss_micro"] for r in confirms if r["decision"] == "confirm")
    assert world.ledger.claim_state(cid) == "Accepted" and world.ledger.best_claim(task)[0] == cid


def test_a_claim_carrying_every_public_byte_gains_nothing_on_the_sealed_shard(world, task, round0):
    honest_id = round0["sub"]["claim_id"]
    memo_dir = _memoriser(world, task)
    memo = world.train("memoriser", experiment_dir=memo_dir)
    honest_dev = mf.load(world.runs["honest"] / "manifest.json").evaluation.value_micro
    memo_dev = mf.load(memo / "manifest.json").evaluation.value_micro
    assert memo_dev < honest_dev // 10  # on the public split the lookup looks like a breakthrough
    sub = world.submit(memo, trainer=2)
    liar = world.submit(world.runs["honest"], trainer=9)  # will overstate its incumbent's loss
    assert sub["sealed"]["round"] == liar["sealed"]["round"] == 1
    # a commit that names the old round is refused by the contract
    fields = ClaimFields(task, 0, cid_to_bytes(sub["manifest_cid"]), bytes(32).replace(b"\0", b"\1"),
                         bytes(32).replace(b"\0", b"\2"), 2, 0, bytes(32).replace(b"\0", b"\3"), 0)
    late = world.chain.as_(7)
    late.commit(late.compute_commitment(late.account_address, fields))
    world.chain.mine()
    with pytest.raises(LedgerWrongRound):
        late.reveal(fields, value=STAKE)
    # the memoriser is an agent's claim (its iteration on disk): it goes on while the claim waits
    agent = Agent(world.chain.as_(2), open_store(world.store_spec),
                  AgentConfig(task, world.tmp / "agent", SearchProposer(), reservations=world.tmp / "reservations"))
    it = world.tmp / "agent" / "iterations" / "0001"
    it.mkdir(parents=True)
    (it / "state.json").write_text(json.dumps({"stage": "done", "outcome": "claim", "claim_id": sub["claim_id"],
                                               "run_dir": sub["run_dir"], "parent_id": honest_id,
                                               "sealed_stage": "waiting"}))
    assert agent.score_waiting() == []  # its round's shard is not open yet
    _to(world, task, 2 * ROUND)
    world.artrain("task", "reveal", task, "--store", world.store_spec, "--dev-account", 0, "--json")
    [scored] = agent.score_waiting()  # what each of its iterations does first
    assert scored["claim_id"] == sub["claim_id"] and agent.score_waiting() == []
    assert scored["incumbent_id"] == honest_id
    # no better than the honest incumbent on data no public byte contains
    assert scored["claimed_loss_micro"] + world.ledger.task(task).min_improvement > scored["incumbent_loss_micro"]
    # the same weights as the incumbent, with the incumbent's loss on the shard overstated: a fake win
    own = scored["incumbent_loss_micro"]
    world.chain.as_(9).score(liar["claim_id"], own, honest_id, own + 100_000)
    first = world.watch(3, 4)  # the quorum for the memoriser, a challenge and an upholding vote for the liar
    decisions = {c: [r["decision"] for recs in first.values() for r in recs if r.get("claim") == c]
                 for c in (sub["claim_id"], liar["claim_id"])}
    assert decisions[sub["claim_id"]].count("confirm") == 2
    challenged = world.events("ClaimChallenged", claimId=liar["claim_id"])
    assert [(c["kind"], c["segment"], int.from_bytes(c["observed"], "big")) for c in challenged] == [(2, 1, own)]
    world.close_windows(3, 4)
    fin = world.events("ClaimFinalized", claimId=sub["claim_id"])
    assert fin[-1]["improved"] is False and world.ledger.best_claim(task)[0] == honest_id
    assert world.ledger.claim_state(liar["claim_id"]) == "Rejected"


def test_a_missed_opening_refunds_the_stake_with_the_rounds_bond_share(world, task, round0):
    _to(world, task, 2 * ROUND + 10)
    sub = world.submit(world.runs["honest"], trainer=6)
    assert sub["sealed"]["round"] == 2
    shown = world.artrain("task", "show", task, "--store", world.store_spec, "--json")["sealed"]
    assert [r["state"] for r in shown["rounds"]] == ["opened", "opened", "running"] and shown["current"] == 2
    shard2 = next((world.home / "sealed").glob("*/shard-0002.bin"))
    data = shard2.read_bytes()
    shard2.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # a corrupted backup: caught before the chain
    _to(world, task, 3 * ROUND)
    one_line_error(world.artrain("task", "reveal", task, "--store", world.store_spec, "--dev-account", 0,
                                 ok=False), "shard-0002.bin", "digest")
    _to(world, task, 3 * ROUND + GRACE + 1)
    before = world.owed(6)
    world.watch(3)  # housekeeping: the claim is finalizable, anyone finalizes it
    assert world.ledger.claim_state(sub["claim_id"]) == "Expired"
    assert world.owed(6) - before == STAKE + BOND // 3  # the stake and round 2's whole bond share (its one claim)
    one_line_error(world.artrain("task", "reveal", task, "--round", 2, "--store", world.store_spec,
                                 "--dev-account", 0, ok=False), "round 2", "deadline")
    # a sponsor's watch has nothing left to open: every round is opened or missed, so it ends
    assert world.artrain("task", "reveal", task, "--watch", "--poll", "0.1", "--store", world.store_spec,
                         "--dev-account", 0, "--json") == []
