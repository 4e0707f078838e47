"""A new user's first hour: nothing a careless user does loses data or wedges a run, the
watcher talks, numbers read one way everywhere, and every failure is one clear line.

Against the session's real anvil (one module world in an evm snapshot, a digits task);
each test retries one defect a new user met (issue "A new user's first hour").
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from arledger import outdir
from arledger.chain.ledger import Ledger
from arledger.chain.signer import Signer
from arledger.cli import main as artrain
from arledger.errors import ConfigError
from arverifier.cli import main as arverify
from tests.test_cli_start import imported_after
from tests.test_e2e_support import DIGITS, make_world, one_line_error, TERMS

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "first-hour")


@pytest.fixture(scope="module")
def task(world):
    return world.create_task()


@pytest.fixture(scope="module")
def run(world, task):
    return world.train("honest", seed=1)


def _copy(world, run: Path, name: str) -> Path:
    import shutil

    dest = world.tmp / "copies" / name
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("submission.json", "claim-manifest.json"))
    return dest


def _commits(world, trainer: int) -> int:
    return len(world.events("ClaimCommitted", trainer=world.chain.address(trainer)))


# -- nothing destroys what the tool did not make ------------------------------------------


def test_output_dirs_are_claimed_not_taken(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert outdir.claim(tmp_path / "new", "t") == "new" and (tmp_path / "new" / outdir.MARKER).is_file()
    (tmp_path / "new" / "made.txt").write_text("x")
    assert outdir.claim(tmp_path / "new", "t", empty=True) == "ours"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [outdir.MARKER]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="not empty and not made by t"):
        outdir.claim(mine, "t", empty=True)
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert outdir.claim(mine, "t", force=True, empty=True) == "forced" and not (mine / "thesis.tex").exists()
    for precious in (tmp_path, Path.home(), tmp_path.parent):  # cwd, home, above cwd: never, even forced
        with pytest.raises(ConfigError, match="refusing to empty"):
            outdir.claim(precious, "t", force=True, empty=True)
    # Another command's directory is not ours: a demo never empties a run dir or a download.
    with pytest.raises(ConfigError, match="not made by demo"):
        outdir.claim(tmp_path / "new", "demo", empty=True)
    # Made before markers: ours only with every file of its kind, not one common name.
    old = tmp_path / "old-demo"
    old.mkdir()
    (old / "summary.json").write_text("{}")
    with pytest.raises(ConfigError):
        outdir.claim(old, "demo", empty=True, legacy=(("summary.json", "anvil.log"),))
    (old / "anvil.log").write_text("")
    assert outdir.claim(old, "demo", empty=True, legacy=(("summary.json", "anvil.log"),)) == "ours"


def test_demo_out_refuses_a_users_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    res = CliRunner().invoke(artrain, ["demo", "--out", "."])
    one_line_error(res, "not empty and not made by artrain demo", "--force")
    forced = CliRunner().invoke(artrain, ["demo", "--out", ".", "--force"])
    one_line_error(forced, "refusing to empty")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_run_out_refuses_a_foreign_directory_and_says_resume_or_restart(world, run, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("1,2\n")
    res = world.artrain("run", DIGITS, "--steps", 20, "--segment-steps", 10, "--out", foreign,
                        "--store", world.store_spec, "--json", ok=False)
    one_line_error(res, "not made by artrain run")
    assert sorted(p.name for p in foreign.iterdir()) == ["data.csv"]
    # The module's run again (deterministic: the same bytes): it is replaced, and says so; a
    # submission of the replaced run is dropped with it.
    (run / "submission.json").write_text('{"stage": "revealed"}')
    out = world.artrain("run", DIGITS, "--steps", 20, "--segment-steps", 10, "--seed", 1, "--out", run,
                        "--store", world.store_spec, "--json")
    assert out["started"].startswith(f"restarting {run}: the finished run there is replaced")
    assert not (run / "submission.json").exists()


def test_best_download_refuses_a_foreign_directory(world, task, tmp_path):
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / "code").mkdir()
    (dest / "code" / "mine.py").write_text("print('mine')")
    res = world.artrain("best", "--task", task, "--download", dest, "--store", world.store_spec, ok=False)
    one_line_error(res, "not made by artrain best --download")
    assert (dest / "code" / "mine.py").exists()
    fresh = world.artrain("best", "--task", task, "--download", tmp_path / "dl", "--store", world.store_spec, "--json")
    assert Path(fresh["downloaded"]["code"], "train.py").is_file()
    world.artrain("best", "--task", task, "--download", tmp_path / "dl", "--store", world.store_spec, "--json")


# -- submissions recover -------------------------------------------------------------------


def test_a_bad_parent_or_stake_is_refused_before_the_commit(world, task, run):
    copy = _copy(world, run, "bad-parent")
    before = _commits(world, 6)
    one_line_error(world.artrain("submit", copy, "--task", task, "--parent", 99, "--store", world.store_spec,
                                  "--dev-account", 6, ok=False), "parent", "claim 99 does not exist")
    one_line_error(world.artrain("submit", copy, "--task", task, "--stake", "100000eth", "--store",
                                  world.store_spec, "--dev-account", 6, ok=False), "stake", "holds")
    assert _commits(world, 6) == before and not (copy / "submission.json").exists()


def test_a_failed_reveal_leaves_a_run_that_continues_or_is_abandoned(world, task, run):
    from arledger.submit import submit_run
    from arstore import open_store

    copy = _copy(world, run, "late-reveal")
    ledger = world.chain.as_(6)

    def too_late(msg: str) -> None:  # the trainer walks away between commit and reveal
        if msg == "reveal":
            world.chain.advance(TERMS["reveal_window"] + 5)

    with pytest.raises(Exception, match="reveal failed: .*RevealWindowClosed.*--abandon"):
        submit_run(ledger, open_store(world.store_spec), copy, task, progress=too_late)
    saved = json.loads((copy / "submission.json").read_text())
    assert saved["stage"] == "committed"
    # A flag that disagrees with the saved submission is an error, not silently ignored.
    one_line_error(world.artrain("submit", copy, "--task", task, "--parent", 1, "--store", world.store_spec,
                                  "--dev-account", 6, ok=False), "--parent 1 disagrees", "--abandon")
    gone = world.artrain("submit", copy, "--task", task, "--abandon", "--dev-account", 6, "--json")
    assert gone["abandoned"] and gone["committed"] and not (copy / "submission.json").exists()
    sub = world.artrain("submit", copy, "--task", task, "--store", world.store_spec, "--dev-account", 6, "--json")
    assert sub["claim_id"] > 0 and sub["resumed"] is False
    one_line_error(world.artrain("submit", copy, "--task", task, "--abandon", "--dev-account", 6, ok=False),
                    f"already revealed as claim {sub['claim_id']}")
    # A reveal mined just before a crash, never written down: the chain, not the file, says so.
    saved = json.loads((copy / "submission.json").read_text())
    saved.update(stage="committed")
    saved.pop("claim_id")
    (copy / "submission.json").write_text(json.dumps(saved))
    one_line_error(world.artrain("submit", copy, "--task", task, "--abandon", "--dev-account", 6, ok=False),
                    "already revealed")
    assert (copy / "submission.json").exists()


def test_warnings_before_staking_a_claim_that_cannot_improve(world, task, run):
    first = world.submit(run, trainer=7)
    res = CliRunner().invoke(artrain, ["submit", str(_copy(world, run, "same-again")), "--task", str(task),
                                       "--store", world.store_spec, "--dev-account", "9", "--json"],
                             env={"ARLEDGER_HOME": str(world.home)})
    assert res.exit_code == 0, res.output
    listed = re.search(r"claim\(s\) ([\d, ]+) also build on claim 0 and are still pending", res.stderr)
    assert listed and str(first["claim_id"]) in listed.group(1).split(", "), res.stderr
    t = world.ledger.task(task)
    cannot_improve = first["claimed_loss_micro"] + t.min_improvement > t.best_loss
    assert ("does not beat the task's best" in res.stderr) == cannot_improve, res.stderr


# -- the watcher talks ----------------------------------------------------------------------


def test_watch_refuses_at_start_what_it_could_not_do(world, task):
    """An account that is not a registered verifier, a store that does not answer: one line at
    start, exit 1, nothing written (it used to replay every claim and then be refused)."""
    data_dir = world.tmp / "v9-unregistered"
    one_line_error(world.arverify("watch", "--once", "--confirmations", 0, "--store", world.store_spec,
                                  "--dev-account", 9, "--data-dir", data_dir, ok=False),
                   "not a registered verifier", "arverify register")
    assert not data_dir.exists()
    world.arverify("register", "--stake", "1eth", "--dev-account", 5, "--json")
    one_line_error(world.arverify("watch", "--once", "--store", "http://127.0.0.1:9", "--dev-account", 5,
                                  "--data-dir", data_dir, ok=False), "127.0.0.1:9")
    assert not data_dir.exists()


def test_a_verifier_below_a_tasks_minimum_stake_skips_its_claims_without_a_replay(world, task):
    assert world.ledger.task(task).claim_count > 0  # the claims earlier tests left pending
    world.arverify("register", "--stake", "0.1eth", "--dev-account", 6, "--json")  # the task asks 0.5
    out = world.arverify("watch", "--once", "--confirmations", 0, "--store", world.store_spec,
                         "--dev-account", 6, "--data-dir", world.tmp / "v6-poor", "--json")
    skips = [r for r in out if r.get("kind") == "skip"]
    assert skips and all("below task" in r["reason"] for r in skips), out
    assert out[-1]["kind"] == "result" and out[-1]["decisions"] == 0 and out[-1]["transactions"] == 0


def test_watch_once_json_always_prints_a_result(world, task):
    world.arverify("register", "--stake", "1eth", "--dev-account", 5, "--json")
    out = world.arverify("watch", "--once", "--confirmations", 0, "--store", world.store_spec,
                         "--dev-account", 5, "--data-dir", world.tmp / "v5-quiet", "--json",
                         "--from-block", world.ledger.block_number() + 1)  # nothing old to verify
    out = out if isinstance(out, list) else [out]
    kinds = [r.get("kind") for r in out]
    assert kinds[0] == "start" and kinds[-1] == "result"
    start, result = out[0], out[-1]
    assert start["ledger"] == world.ledger.address and start["confirmations"] == 0 and "sandbox" in start
    assert start["store"] == world.store_spec  # the store it really uses, not "default"
    assert result["head"] >= result["safe_block"] and "pending_claims" in result


def test_an_idle_watcher_prints_a_start_line_and_a_heartbeat(world, task):
    world.arverify("register", "--stake", "1eth", "--dev-account", 4, "--json")
    env = {**os.environ, "ARLEDGER_HOME": str(world.home)}
    cmd = [str(Path(sys.executable).parent / "arverify"), "watch", "--store", world.store_spec, "--dev-account", "4",
           "--data-dir", str(world.tmp / "v4-idle"), "--heartbeat", "0.5", "--poll-interval", "0.2",
           "--from-block", str(world.ledger.block_number() + 1),  # nothing old to verify: idle from the start
           "--confirmations", "0", "--no-finalize"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        time.sleep(8)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "arverify watch: verifier" in err and world.ledger.address in err, err
    assert "idle: head" in err and "pending" in err, err


# -- one convention for numbers ---------------------------------------------------------------

LOSS_KEYS = ("loss", "claimed_loss", "measured_loss", "best_loss", "baseline_loss", "min_improvement")


def _loss_convention(doc, where: str) -> int:
    """Every loss key holds a float (or None) and a ``_micro`` twin with the exact integer."""
    seen = 0
    if isinstance(doc, list):
        return sum(_loss_convention(d, where) for d in doc)
    if not isinstance(doc, dict):
        return 0
    for key, value in doc.items():
        if key in LOSS_KEYS:
            seen += 1
            micro = doc.get(f"{key}_micro", "missing")
            assert micro != "missing", f"{where}: {key} without {key}_micro"
            if value is not None:
                assert isinstance(value, float) and isinstance(micro, int), f"{where}: {key}={value!r} {micro!r}"
                assert round(value * 1e6) == micro, f"{where}: {key} {value} vs {micro}"
        elif isinstance(value, (dict, list)) and key != "spec":
            seen += _loss_convention(value, where)
    return seen


def test_every_command_prints_losses_one_way(world, task, run):
    sub = world.submit(run, trainer=2)
    docs = {
        "task show": world.artrain("task", "show", task, "--store", world.store_spec, "--json"),
        "submit": sub,
        "status": world.artrain("status", sub["claim_id"], "--json"),
        "best": world.artrain("best", "--task", task, "--store", world.store_spec, "--json"),
        "claims": world.artrain("claims", "--task", task, "--json"),
        "check": world.arverify("check", sub["claim_id"], "--store", world.store_spec, "--json"),
        "report": world.artrain("report", run, "--task", task, "--note", "units", "--store", world.store_spec,
                                "--dev-account", 2, "--json"),
    }
    for where, doc in docs.items():
        assert _loss_convention(doc, where) >= 1, f"{where} printed no loss: {doc}"
    manifest = json.loads((run / "manifest.json").read_text())
    assert 1_000 < manifest["work"]["params"] < 10_000_000  # a count, never scaled
    human = world.artrain("status", sub["claim_id"], ok=False).output
    assert f"loss {sub['claimed_loss']:.6f}" in human


def test_the_chain_readers_and_withdraw_import_no_torch_and_no_web3(world, task):
    """What reads the chain (and what only signs) starts in a fraction of a second: no torch, and
    no web3 or eth_account at all (arledger.chain speaks JSON-RPC and signs itself)."""
    runs = [["task", "show", str(task), "--store", world.store_spec], ["best", "--task", str(task)],
            ["claims", "--task", str(task)], ["devnet", "status"], ["withdraw", "--dev-account", "5"]]
    if world.ledger.total_claims():
        runs.append(["status", "1"])
    after = imported_after(runs)
    assert after == [[]] * len(runs), list(zip(runs, after))


# -- one clear line, never a traceback --------------------------------------------------------


def test_a_contract_that_is_not_the_ledger_is_one_line(world, task):
    # A contract whose code is a single STOP: every call returns nothing.
    stop = replace(world.ledger.artifact, bytecode="0x6001600c60003960016000f300")
    other = Ledger.deploy(world.ledger.rpc, Signer.from_key(world.chain.keys[9]), stop).address
    one_line_error(world.artrain("status", 1, "--ledger", other, ok=False), "does not answer", other)
    one_line_error(world.artrain("claims", "--task", 1, "--ledger", other, ok=False), "does not answer")


def test_a_json_file_that_is_not_a_keystore_is_one_line(world, tmp_path):
    bogus = tmp_path / "key.json"
    bogus.write_text(json.dumps({"address": "0x" + "11" * 20}))
    one_line_error(world.artrain("withdraw", "--keystore", bogus, ok=False), "not an encrypted keystore")


def test_unknown_task_and_missing_store_dir_are_errors(world, task, tmp_path):
    line = one_line_error(world.artrain("claims", "--task", 99, ok=False), "task 99 does not exist on this ledger")
    assert "LedgerUnknownTask" not in line, "a sentence, not the error's name"
    missing = tmp_path / "nonexistent" / "x"
    one_line_error(world.artrain("best", "--task", task, "--store", f"embedded:{missing}", ok=False),
                    "does not exist")
    assert not missing.parent.exists()


def test_status_says_when_the_deadline_passed(world, task, run):
    sub = world.submit(run, trainer=1)
    world.chain.advance(TERMS["challenge_window"] + 3 * 3600)
    out = world.artrain("status", sub["claim_id"], ok=False).output
    assert re.search(r"challenge deadline passed 3\.\d h ago", out), out


def _leaves(group: click.Group, prefix: list[str]):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, prefix + [name])
        else:
            yield " ".join(prefix + [name]), cmd


@pytest.mark.parametrize("name,cmd", [*_leaves(artrain, ["artrain"]), *_leaves(arverify, ["arverify"])],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_leaf_command_has_examples(name, cmd):
    text = cmd.help or ""
    assert "Example" in text, f"{name} --help has no examples"
    examples = text[text.index("Example"):]
    assert name.split()[0] in examples, f"{name}: the examples do not show the command"


def test_the_demo_chart_names_every_mark_and_marks_a_rejection_as_such():
    from ardemo.demo import chart_figure

    claims = [{"claim_id": 1, "trainer_name": "alice", "state": "Accepted", "improved": True, "claimed_loss": 2.9},
              {"claim_id": 2, "trainer_name": "mallory", "state": "Rejected", "improved": False, "claimed_loss": 2.1}]
    fig = chart_figure(claims, {"baseline_loss": 7.1, "metric": "val_bpc", "units": "bits per character"})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["verified best (on chain)", "accepted claim", "rejected claim (its claimed loss)", "baseline"]
    best_line = ax.get_lines()[0].get_ydata()
    assert list(best_line) == [7.1, 2.9, 2.9]  # the rejected claim's 2.1 never becomes the best
