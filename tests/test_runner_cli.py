"""`artrain run` / `artrain replay` through click's CliRunner, on a real js-ipfs node."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from arledger.cli import main
from arledger.templates import template_dir

DIGITS = str(template_dir("digits"))
DIGITS_HARNESS = template_dir("digits") / "harness"


@pytest.mark.ipfsnode
def test_run_then_replay_by_manifest_cid_from_ipfs(tmp_path, ipfs_node):
    runner = CliRunner()
    res = runner.invoke(main, ["run", DIGITS, "--steps", "8", "--segment-steps", "4", "--seed", "5",
                               "--out", str(tmp_path / "run"), "--store", ipfs_node.url, "--json",
                               "--hypothesis", "width 8 suffices", "--task", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["segments"] == 2 and summary["metric"] == "val_ce"
    assert summary["manifest_cid"].startswith("bafk")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["hypothesis"] == "width 8 suffices" and manifest["task_id"] == 1
    assert manifest["schema_version"] == 2 and manifest["train_splits"] == ["train"]
    assert manifest["harness_cid"].startswith("b") and manifest["harness_cid"] != manifest["code_cid"]

    # a verifier's view: only the manifest CID and the IPFS node
    res = runner.invoke(main, ["replay", summary["manifest_cid"], "--all", "--evaluate",
                               "--store", ipfs_node.url, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] is True and [s["status"] for s in out["segments"]] == ["match", "match"]
    assert out["evaluation"]["matches"] is True
    assert out["evaluation"]["measured"] == pytest.approx(summary["value"], abs=1e-6)


def test_replay_of_a_run_dir_prints_one_line_per_segment(tmp_path):
    runner = CliRunner()
    store = f"embedded:{tmp_path / 'store'}"
    res = runner.invoke(main, ["run", DIGITS, "--steps", "4", "--segment-steps", "2", "--out",
                               str(tmp_path / "r"), "--store", store])
    assert res.exit_code == 0, res.output
    assert "val_ce = " in res.output
    res = runner.invoke(main, ["replay", str(tmp_path / "r"), "--segment", "1", "--evaluate", "--store", store])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("segment 1: match")
    assert "final val_ce: claimed" in res.output and "(match)" in res.output


def test_an_experiment_json_with_a_metric_is_one_clear_line(tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(DIGITS, exp, ignore=shutil.ignore_patterns("__pycache__"))
    spec = json.loads((exp / "experiment.json").read_text())
    (exp / "experiment.json").write_text(json.dumps(dict(spec, metric="val_ce")))
    res = CliRunner().invoke(main, ["run", str(exp), "--steps", "2", "--segment-steps", "2",
                                    "--out", str(tmp_path / "r"),
                                    "--store", f"embedded:{tmp_path}/s"])
    assert res.exit_code == 1
    assert "field 'metric' belongs to the task harness now" in res.output
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_run_with_an_explicit_harness_dir(tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(DIGITS, exp, ignore=shutil.ignore_patterns("__pycache__", "harness"))
    spec = json.loads((exp / "experiment.json").read_text())
    (exp / "experiment.json").write_text(json.dumps({k: v for k, v in spec.items() if k != "harness"}))
    store = f"embedded:{tmp_path / 'store'}"
    res = CliRunner().invoke(main, ["run", str(exp), "--steps", "2", "--segment-steps", "2",
                                    "--out", str(tmp_path / "r"),
                                    "--store", store])
    assert res.exit_code == 1 and "names no 'harness'" in res.output
    res = CliRunner().invoke(main, ["run", str(exp), "--steps", "2", "--segment-steps", "2",
                                    "--out", str(tmp_path / "r"), "--store", store,
                                    "--harness", str(DIGITS_HARNESS), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["metric"] == "val_ce"


def test_bad_budget_is_one_clear_line(tmp_path):
    res = CliRunner().invoke(main, ["run", DIGITS, "--steps", "10", "--segment-steps", "3",
                                    "--out", str(tmp_path / "r"), "--store", f"embedded:{tmp_path}/s"])
    assert res.exit_code == 1
    assert "Error: segment_steps: 3 must be >= 1 and divide steps 10" in res.output


def test_bad_trainer_address_is_rejected_before_training(tmp_path):
    res = CliRunner().invoke(main, ["run", DIGITS, "--out", str(tmp_path / "r"), "--trainer", "alice",
                                    "--store", f"embedded:{tmp_path}/s"])
    assert res.exit_code == 1 and "trainer: 'alice' is not a 0x-prefixed 20-byte address" in res.output
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_a_store_that_does_not_answer_stops_the_run_before_anything_is_written(tmp_path):
    """One line naming the store, no progress bar, and no run dir (issue 22)."""
    res = CliRunner().invoke(main, ["run", DIGITS, "--out", str(tmp_path / "r"), "--store", "http://127.0.0.1:9"])
    assert res.exit_code == 1, res.output
    assert res.output.strip() == "Error: IPFS node at http://127.0.0.1:9 unavailable: connection refused"
    assert not (tmp_path / "r").exists()


def test_replay_of_an_unfinished_run_names_the_manifest(tmp_path):
    (tmp_path / "r").mkdir()
    res = CliRunner().invoke(main, ["replay", str(tmp_path / "r"), "--segment", "0"])
    assert res.exit_code == 1 and "manifest.json: missing" in res.output


@pytest.mark.parametrize("cmd", ["run", "replay"])
def test_help_has_examples(cmd):
    res = CliRunner().invoke(main, [cmd, "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output and "--json" in res.output
