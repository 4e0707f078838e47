"""`artrain` ledger commands and `arverify` commands: help, --json outputs, one-line errors.

Against the session's real anvil (a module world inside an evm snapshot); the happy
paths of submit/watch/best are exercised end to end in tests/test_e2e_*.py.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from arledger.submit import submit_run
from arstore import open_store
from arstore.errors import StoreUnavailable
from tests.test_e2e_support import DIGITS, E, make_world, one_line_error

ARTRAIN_CMDS = [["task", "create"], ["task", "show"], ["submit"], ["best"], ["status"], ["claims"], ["report"],
                ["withdraw"]]
ARVERIFY_CMDS = [["register"], ["unregister"], ["withdraw"], ["check"], ["watch"]]


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "cli-ledger")


@pytest.fixture(scope="module")
def task(world):
    return world.create_task()


@pytest.fixture(scope="module")
def run(world, task):
    return world.train("honest", seed=1)


@pytest.mark.parametrize("cmd", ARTRAIN_CMDS, ids=" ".join)
def test_artrain_help_has_json_option(world, cmd):
    res = world.artrain(*cmd, "--help", ok=False)
    assert res.exit_code == 0 and "--json" in res.output and "Usage: main " + " ".join(cmd) in res.output


@pytest.mark.parametrize("cmd", ARVERIFY_CMDS, ids=" ".join)
def test_arverify_help_has_json_option(world, cmd):
    res = world.arverify(*cmd, "--help", ok=False)
    assert res.exit_code == 0 and "--json" in res.output


def test_top_level_help_lists_the_ledger_commands(world):
    out = world.artrain("--help", ok=False).output
    for name in ("task", "submit", "best", "status", "claims", "report", "withdraw"):
        assert f"  {name}" in out
    assert "Examples" in world.arverify("--help", ok=False).output


def test_task_show_json_and_unknown_task(world, task):
    out = world.artrain("task", "show", task, "--store", world.store_spec, "--json")
    b = out["spec"]["budget"]
    assert (b["steps"], b["segment_steps"]) == (20, 10) and out["quorum"] == 2
    # the work budget measured on the baseline (docs/budget.md): digits counts FLOPs, build() none
    assert b["flops_per_step"] == b["startup_flops"] > 0 and b["max_params"] > 0 and b["time_ratio"] == 1.5
    assert "1.5x the CPU time of the task's baseline on your machine" in out["time_rule"]
    one_line_error(world.artrain("task", "show", 999, "--store", world.store_spec, ok=False), "999")
    one_line_error(world.artrain("best", "--task", 999, "--store", world.store_spec, ok=False), "999")


def test_best_before_any_claim_is_the_baseline(world, task):
    out = world.artrain("best", "--task", task, "--store", world.store_spec, "--json")
    assert out["claim_id"] == 0 and out["loss_micro"] == world.ledger.task(task).baseline_loss
    assert out["code_cid"] and out["weights_cid"] is None


def test_unknown_claim_is_one_line(world, task):
    one_line_error(world.artrain("status", 4242, ok=False), "4242")
    one_line_error(world.arverify("check", 4242, "--store", world.store_spec, ok=False), "4242")


def test_run_that_does_not_meet_the_task_is_refused_before_any_gas(world, task):
    bad = world.tmp / "runs" / "short"
    world.artrain("run", DIGITS, "--steps", 10, "--segment-steps", 10, "--seed", 1, "--out", bad,
                  "--store", world.store_spec, "--json")
    rpc = world.ledger.rpc
    me = world.chain.address(1)
    nonce, balance, claims = rpc.nonce(me), rpc.balance(me), world.ledger.total_claims()
    res = world.artrain("submit", bad, "--task", task, "--store", world.store_spec, "--dev-account", 1, ok=False)
    line = one_line_error(res, "does not meet task", "steps")
    assert "SubmitError" not in line, "a sentence, not a class name"
    assert "budget is 20" in line
    assert (rpc.nonce(me), rpc.balance(me)) == (nonce, balance)
    assert world.ledger.total_claims() == claims and world.events("ClaimCommitted", trainer=me) == []
    assert not (bad / "submission.json").exists()


def test_unreachable_rpc_is_one_line(world, task):
    for res in (world.artrain("status", 1, "--rpc-url", "http://127.0.0.1:9", ok=False),
                world.arverify("register", "--stake", "1eth", "--rpc-url", "http://127.0.0.1:9", "--dev-account", 3,
                               ok=False)):
        one_line_error(res, "127.0.0.1:9")


def test_bad_amount_and_bad_account_are_one_line(world, task):
    one_line_error(world.arverify("register", "--stake", "lots", "--dev-account", 3, ok=False), "stake")
    one_line_error(world.artrain("withdraw", "--dev-account", 77, ok=False), "dev-account")


def test_submit_status_claims_report_and_check_json(world, task, run):
    sub = world.submit(run, trainer=1)
    assert set(sub) >= {"claim_id", "manifest_cid", "commit_tx", "reveal_tx", "gas", "stake"}
    again = world.artrain("submit", sub["run_dir"], "--task", task, "--store", world.store_spec,
                          "--dev-account", 1, "--json")  # re-running is a no-op resume, not a 2nd claim
    assert again["claim_id"] == sub["claim_id"] and again["resumed"] is True
    assert len(world.events("ClaimCommitted", trainer=world.chain.address(1))) == 1

    st = world.artrain("status", sub["claim_id"], "--json")
    assert st["state"] == "Open" and st["confirmations"] == 0 and st["manifest_cid"] == sub["manifest_cid"]
    assert world.artrain("status", "--claim", sub["claim_id"], "--json")["manifest_cid"] == sub["manifest_cid"]
    res = world.artrain("status", ok=False)
    assert res.exit_code == 2 and "name one claim" in res.output  # a usage error: click's exit status

    verdict = world.arverify("check", sub["claim_id"], "--store", world.store_spec, "--json")
    assert verdict["decision"] == "confirm" and verdict["measured_loss_micro"] == sub["claimed_loss_micro"]
    assert verdict["measured_loss"] == sub["claimed_loss"] == sub["claimed_loss_micro"] / 1e6
    assert world.ledger.confirmations(sub["claim_id"]) == 0  # check sends nothing

    rep = world.artrain("report", run, "--task", task, "--note", "same run, as a lab-notebook entry",
                        "--store", world.store_spec, "--dev-account", 2, "--json")
    assert (rep["loss"], rep["loss_micro"]) == (sub["claimed_loss"], sub["claimed_loss_micro"])
    rows = world.artrain("claims", "--task", task, "--json")
    kinds = [(r["kind"], r.get("claim_id")) for r in rows]
    assert kinds == [("claim", sub["claim_id"]), ("report", None)]
    assert rows[1]["note"] == "same run, as a lab-notebook entry"
    human = world.artrain("claims", "--task", task, ok=False).output
    assert "Open" in human and "lab-notebook" in human

    # nothing expires unseen: in the last quarter of its window without its quorum, status warns
    assert st["expiry_warning"] is None, "early in its window: no warning"
    world.chain.advance(st["challenge_deadline"] - st["now"] - 100)
    st = world.artrain("status", sub["claim_id"], "--json")
    assert "0/2 confirmations" in st["expiry_warning"] and "expires" in st["expiry_warning"]
    human = world.artrain("status", sub["claim_id"], ok=False).output
    assert "warning: claim" in human and "arverify watch" in human
    # and so does submit, run again on the run it claimed
    again = world.artrain("submit", sub["run_dir"], "--task", task, "--store", world.store_spec,
                          "--dev-account", 1, "--json")
    assert again["resumed"] is True and "0/2 confirmations" in again["expiry_warning"]


def test_register_unregister_withdraw_json(world, task):
    reg = world.arverify("register", "--stake", "0.6eth", "--dev-account", 5, "--json")
    assert reg["stake"] == 6 * E // 10
    un = world.arverify("unregister", "--dev-account", 5, "--json")
    assert un["balance"] == 6 * E // 10
    out = world.arverify("withdraw", "--dev-account", 5, "--json")
    assert out["withdrawn"] == 6 * E // 10
    again = world.arverify("withdraw", "--dev-account", 5, "--json")
    assert again == {"account": world.chain.address(5), "withdrawn": 0}
    assert json.dumps(out)


def test_task_create_refuses_funds_it_lacks_before_any_slow_work(world):
    """The pool (and a sealed task's bond) is checked against the sponsor's balance first: no data
    set built, no baseline trained, no transaction; a reward above the pool is said."""
    from arledger import tasks
    from arledger.chain.units import parse_amount

    before = (world.ledger.task_count(), sorted(world.home.rglob("*")))
    res = world.artrain("task", "create", "--template", "digits", "--pool", "1000000eth", "--store", world.store_spec,
                        "--dev-account", 0, ok=False)
    line = one_line_error(res, "funds:", "1000000eth", "holds")
    assert "eth" in line and not re.search(r"\d ?wei\b", line), "amounts in ETH (or gwei), never in wei"
    assert (world.ledger.task_count(), sorted(world.home.rglob("*"))) == before, "nothing built, pinned or sent"
    req = tasks.with_overrides(tasks.TaskRequest(experiment_dir=tasks.experiment_dir_of("digits")),
                               reward=parse_amount("5eth"), pool=parse_amount("1eth"))
    [warning] = tasks.check_funds(world.ledger, req)
    assert "the reward 5eth is more than the pool 1eth" in warning


class _DiesWhilePinning:
    """The world's store, whose node goes away once submit starts pinning (a real store behind)."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def add_file(self, path):
        raise StoreUnavailable("http://127.0.0.1:9", "connection refused")


def test_a_submit_that_fails_before_its_commit_leaves_the_run_dir_as_it_found_it(world, task, run):
    """Issue 22: a failed first submit left claim-manifest.json behind."""
    copy = world.tmp / "claims" / "dies-while-pinning"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("submission.json", "claim-manifest.json"))
    before = sorted(p.name for p in copy.iterdir())
    with pytest.raises(StoreUnavailable):
        submit_run(world.ledger, _DiesWhilePinning(open_store(world.store_spec)), copy, task,
                   time_home=world.tmp / "home")
    assert sorted(p.name for p in copy.iterdir()) == before
