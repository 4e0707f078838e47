"""End to end: the watcher under stress — killed mid-replay, a chain reorganization, hostile code.

A task with quorum 1 and one random segment per verifier (each check = one segment
replay + the final evaluation) keeps this module fast; the flow module covers quorum 2.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arstore import open_store
from arverifier.check import ClaimChecker
from arverifier.node import NodeConfig, VerifierNode
from arverifier.state import WatcherState
from tests.test_e2e_support import DIGITS, make_world

ARVERIFY = str(Path(sys.executable).parent / "arverify")


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "e2e-watcher")


@pytest.fixture(scope="module")
def task(world):
    from tests.test_e2e_support import LIMITS, TERMS

    # Tighter limits than the flow module: the hostile claims run into them (an honest replay
    # needs ~3 s of CPU), and containment time is bounded by them.
    task_id = world.create_task(sampling={"random_segments": 1, "suspicious_segments": 0},
                                terms={**TERMS, "quorum": 1},
                                limits={**LIMITS, "cpu_seconds": 8, "wall_seconds": 20})
    for v in (3, 4, 5):
        world.arverify("register", "--stake", "1eth", "--dev-account", v, "--json")
    return task_id


@pytest.fixture(scope="module")
def honest_run(world, task):
    return world.train("honest", seed=1)


def _confirmations_by(world, claim_id: int, verifier: int) -> int:
    return len(world.events("ClaimConfirmed", claimId=claim_id, verifier=world.chain.address(verifier)))


def _watch_cmd(world, verifier: int, data_dir: Path) -> list[str]:
    return [ARVERIFY, "watch", "--once", "--confirmations", "0", "--store", world.store_spec, "--dev-account",
            str(verifier), "--data-dir", str(data_dir), "--json"]


def test_verifier_killed_mid_replay_sends_no_duplicate_and_misses_no_claim(world, honest_run):
    a = world.submit(honest_run, trainer=1)["claim_id"]
    b = world.submit(honest_run, trainer=2)["claim_id"]
    data_dir = world.tmp / "verifier3"
    env = {**os.environ, "ARLEDGER_HOME": str(world.home)}
    log = open(world.tmp / "watch-killed.log", "wb")
    proc = subprocess.Popen(_watch_cmd(world, 3, data_dir), env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # Kill it while it replays: its per-claim work dir exists only during a check.
        while not any((data_dir / "work").glob("claim*")):
            assert proc.poll() is None, (world.tmp / "watch-killed.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the watcher never started a replay"
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the sandboxed replay it left behind (our own group)
        except ProcessLookupError:
            pass
        log.close()
    assert _confirmations_by(world, a, 3) + _confirmations_by(world, b, 3) <= 1

    for attempt in range(2):  # a restart finishes the work; a second restart finds nothing to do
        out = subprocess.run(_watch_cmd(world, 3, data_dir), env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert _confirmations_by(world, a, 3) == 1 and _confirmations_by(world, b, 3) == 1, out.stdout
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["kind"] for r in records] == ["start", "result"], out.stdout  # the last pass decided nothing new
    assert (records[-1]["decisions"], records[-1]["transactions"]) == (0, 0)
    state = WatcherState(data_dir / "state.sqlite")
    try:
        rows = {r["claim_id"]: r for r in state.all_claims()}
    finally:
        state.close()
    assert rows[a]["status"] == rows[b]["status"] == "done"


def test_chain_reorganization_is_followed(world, honest_run):
    """A ClaimRevealed the watcher has already handled disappears in a reorganization
    (evm_snapshot / evm_revert, then a different history is mined): the same claim id now
    belongs to another trainer's claim in another block. The watcher's state rewinds and
    it verifies and confirms only the claim of the final chain."""
    ledger = world.chain.as_(5)
    store = open_store(world.store_spec)
    state = WatcherState(world.tmp / "reorg" / "state.sqlite")
    node = VerifierNode(ledger, store, state, ClaimChecker(store, ledger.account_address,
                                                           workdir=world.tmp / "reorg" / "work"),
                        NodeConfig(confirmations=0))
    try:
        node.step()  # catch up with everything so far
        rpc = world.ledger.rpc
        snap = rpc.request("evm_snapshot")
        gone = world.submit(honest_run, trainer=6)
        polled = node.follower.poll()  # the watcher sees the reveal (not yet verified)
        assert polled.handled >= 1
        row = {r["claim_id"]: r for r in state.all_claims()}[gone["claim_id"]]
        assert row["status"] == "pending"
        gone_block = row["block"]

        assert rpc.request("evm_revert", [snap]) is True
        world.chain.mine(2)  # a different history: empty blocks first, then another trainer's claim
        kept = world.submit(honest_run, trainer=7)
        assert kept["claim_id"] == gone["claim_id"]  # the id moved to another claim
        assert ledger.claim(kept["claim_id"]).trainer.lower() == world.chain.address(7).lower()

        report = node.step()
        assert report.rewound_to is not None and report.rewound_to < gone_block
        rows = {r["claim_id"]: r for r in state.all_claims()}
        new_block = ledger.claim_revealed_event(kept["claim_id"]).block_number
        assert new_block != gone_block
        assert rows[kept["claim_id"]]["block"] == new_block and rows[kept["claim_id"]]["status"] == "done"
        assert [d["decision"] for d in report.decisions] == ["confirm"]
        confirmed = world.events("ClaimConfirmed", claimId=kept["claim_id"])
        assert [e["verifier"].lower() for e in confirmed] == [ledger.account_address.lower()]
        assert node.step().transactions == []  # nothing left to do, nothing sent twice
    finally:
        state.close()


HOSTILE = {
    "fork_bomb": "        import os\n        while True:\n            os.fork()\n",
    "endless_loop": "        while True:\n            pass\n",
}


def _hostile_experiment(dest: Path, body: str) -> Path:
    """The digits template whose train_step attacks, but only inside a replay worker
    (so the trainer's run completes and publishes a normal-looking claim)."""
    shutil.copytree(DIGITS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    train = dest / "train.py"
    train.write_text(train.read_text() + f'''

_honest_train_step = train_step


def train_step(model, optimizer, batch):
    import sys
    if "runner/worker" in " ".join(sys.argv):
{body}
    return _honest_train_step(model, optimizer, batch)
''')
    return dest


def test_hostile_train_py_is_contained_and_challenged(world, honest_run):
    claims = {}
    for trainer, name in zip((6, 7), HOSTILE):
        exp = _hostile_experiment(world.tmp / f"exp-{name}", HOSTILE[name])
        run = world.train(name, seed=5, experiment_dir=exp, sandbox=False)
        claims[name] = world.submit(run, trainer=trainer)["claim_id"]
    honest = world.submit(honest_run, trainer=9)["claim_id"]
    t0 = time.monotonic()
    records = world.watch(4)[4]
    elapsed = time.monotonic() - t0
    by_claim = {r["claim"]: r for r in records if "dispute" not in r}
    for name, cid in claims.items():
        assert by_claim[cid]["decision"] == "challenge", by_claim[cid]
        assert "failed to replay" in by_claim[cid]["reason"], by_claim[cid]
        ch = world.events("ClaimChallenged", claimId=cid)
        assert len(ch) == 1 and ch[0]["challenger"].lower() == world.chain.address(4).lower()
        assert world.ledger.claim_state(cid) == "Disputed"
    # ... and the watcher carried on: the next (honest) claim was verified and confirmed.
    assert by_claim[honest]["decision"] == "confirm"
    assert _confirmations_by(world, honest, 4) == 1
    assert elapsed < 180, f"containment took {elapsed:.0f}s: " + str(
        {cid: (r["decision"], r["seconds"]) for cid, r in by_claim.items()})
    assert json.dumps(records)  # records are plain JSON (the --json log)
