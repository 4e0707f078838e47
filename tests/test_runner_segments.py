"""Segmented runs and replays on the real digits template (tiny budgets), real store.

Each replay is a real fresh process (python -m arledger.runner.worker, the
default ``SubprocessExecutor``); the harness runs in this process (``InProcessExecutor``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from arledger import checkpoint
from arledger.errors import ExperimentError
from arledger.execution import InProcessExecutor, SubprocessExecutor, worker_argv
from arledger.harness import load_harness
from arledger.protocol import (evaluate_final, probe_checkpoints, replay, replay_segment, ReplayOptions,
                               run_experiment, RunOptions)
from arledger.protocol.artifacts import ckpt_path
from arledger.protocol.replay import normalized_distance
from arledger.runner.worker import run_request
from arledger.templates import template_dir
from arstore.embedded import EmbeddedStore

DIGITS = template_dir("digits")
STEPS, K, SEED = 12, 4, 3


def _replay(m, store, workdir, **kw):
    """What a verifier does: the manifest and the store only (no run dir)."""
    return replay(m, ReplayOptions(store=store, workdir=workdir, **kw))


def _opts(out, **kw):
    return RunOptions(experiment_dir=DIGITS, out=out, steps=STEPS, segment_steps=K, seed=SEED, threads=1, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def honest(tmp_path_factory, store):
    out = tmp_path_factory.mktemp("honest")
    return run_experiment(_opts(out), store=store)


def _flip_one_weight_byte(session, i, k, on_step):
    session.train_steps(k, on_step=on_step)
    if i == 1:  # fabricated jump: the published state is not what training produced
        data = bytearray(session.capture())
        tensors, _ = checkpoint.deserialize(bytes(data))
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        start = header["fc.weight" if "fc.weight" in header else "model.fc.weight"]["data_offsets"][0]
        data[8 + header_len + start] ^= 0x01  # lowest mantissa bit of one float
        session.restore(bytes(data))


def _other_data(session, i, k, on_step):
    if i == 1:  # trained on the held-out validation split instead of train
        from safetensors.torch import load

        val = load(load_harness(DIGITS / "harness").build_data()["val"])  # the trainer can build it
        d = session.data
        assert not hasattr(d, "x_val"), "train.py must never see the validation split"
        swapped = type(d).__new__(type(d))
        swapped.__dict__.update(d.__dict__, x_train=(val["x"].float() / 16.0).view(-1, 1, 8, 8),
                                y_train=val["y"].long())
        session.train_steps(k, data=swapped, on_step=on_step)
    else:
        session.train_steps(k, on_step=on_step)


def test_run_writes_every_boundary_and_a_valid_manifest(honest):
    m = honest.manifest
    assert m.segments == STEPS // K and [b.step for b in m.boundaries] == [0, 4, 8, 12]
    for b in m.boundaries:
        assert checkpoint.file_state_hash(ckpt_path(honest.manifest_path.parent, b.index)) == b.state_hash
    assert len({b.state_hash for b in m.boundaries}) == len(m.boundaries)
    assert m.environment["threads"] == 1 and m.environment["deterministic"]["tf32"] is False
    assert not (honest.manifest_path.parent / "progress.json").exists()
    run = honest.manifest_path.parent
    assert m.train_splits == ("train",) and set(m.datasets) == {"train", "val"}
    assert [p.name for p in (run / "data").iterdir()] == [m.datasets["train"]]  # what train.py is handed
    assert [p.name for p in (run / "heldout").iterdir()] == [m.datasets["val"]]  # the harness's only
    assert sorted(p.name for p in (run / "harness").iterdir()) == ["harness.py"]
    assert m.evaluation.metric == "val_ce" and set(m.evaluation.metrics_micro) == {"val_ce", "val_accuracy"}


def test_sandboxed_and_in_process_training_give_the_same_bits(honest, store, tmp_path):
    """The default run trains in the sandbox, segment by segment from its checkpoints; the
    opted-out run trains in this process: the same state hashes and final weights, the same
    work report (what verifiers hold a run to does not depend on where it trained)."""
    assert _opts(tmp_path).sandbox, "training is sandboxed by default"
    progress = []
    mine = run_experiment(_opts(tmp_path / "here", sandbox=False), store=store,
                          on_progress=lambda step, loss, seg, total: progress.append((step, seg)))
    assert [b.state_hash for b in mine.manifest.boundaries] == [b.state_hash for b in honest.manifest.boundaries]
    assert mine.manifest.final_weights_cid == honest.manifest.final_weights_cid
    assert mine.manifest.work == honest.manifest.work
    assert mine.manifest.evaluation == honest.manifest.evaluation
    assert progress == [(s, (s - 1) // K) for s in range(1, STEPS + 1)]


def test_a_segment_hook_needs_the_opt_out(tmp_path, store):
    with pytest.raises(ExperimentError, match="sandbox=False"):
        run_experiment(_opts(tmp_path / "hooked"), store=store, train_segment=_other_data)


def test_same_seed_in_two_processes_gives_identical_state_hashes(honest, tmp_path):
    code = (
        "import sys,json; from arledger.protocol import *; from arstore.embedded import EmbeddedStore;"
        f"r=run_experiment(RunOptions(experiment_dir=sys.argv[1], out=sys.argv[2], steps={STEPS},"
        f" segment_steps={K}, seed={SEED}, threads=1), store=EmbeddedStore(sys.argv[3]));"
        "print(json.dumps([b.state_hash for b in r.manifest.boundaries]+[r.manifest.final_weights_cid]))"
    )
    outs = []
    for n in range(2):
        p = subprocess.run([sys.executable, "-c", code, str(DIGITS), str(tmp_path / f"r{n}"), str(tmp_path / "s")],
                           capture_output=True, text=True, check=True)
        outs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    expected = [b.state_hash for b in honest.manifest.boundaries] + [honest.manifest.final_weights_cid]
    assert outs[0] == outs[1] == expected


def test_replay_of_every_segment_matches(honest, store, tmp_path):
    m = honest.manifest
    job = _replay(m, store, tmp_path / "w")
    results = [replay_segment(job, i) for i in range(m.segments)]
    assert [r.status for r in results] == ["match"] * m.segments
    assert all(r.produced_hash == m.boundaries[r.segment + 1].state_hash for r in results)
    # and from the trainer's run dir (files reused where their CIDs check)
    job = replay(m, ReplayOptions(run_dir=honest.manifest_path.parent, store=store, workdir=tmp_path / "w2"))
    assert replay_segment(job, m.segments - 1).status == "match"


def test_final_evaluation_reproduces_the_manifest_metrics(honest, store, tmp_path):
    m = honest.manifest
    ev = evaluate_final(_replay(m, store, tmp_path / "w"))
    assert ev.ok and ev.invalid is None and ev.causality is None  # digits is not a causal task
    assert {k: round(v * 1e6) for k, v in ev.metrics.items()} == m.evaluation.metrics_micro
    # a check seed is ignored by a non-causal harness: same metrics, no check
    ev2 = evaluate_final(_replay(m, store, tmp_path / "w2"), check_seed=b"\x01" * 32)
    assert ev2.metrics == ev.metrics and ev2.causality is None


def test_probe_losses_of_every_checkpoint(honest, store, tmp_path):
    m = honest.manifest
    probes = probe_checkpoints(_replay(m, store, tmp_path / "w"))
    assert len(probes) == m.segments + 1 and all(set(p) == {"train", "val"} for p in probes)
    assert probes[-1]["train"] < probes[0]["train"]  # training lowers the training loss
    assert probes == probe_checkpoints(_replay(m, store, tmp_path / "w2"))  # deterministic


@pytest.mark.parametrize("forge", [_flip_one_weight_byte, _other_data], ids=["flipped-byte", "other-data"])
def test_forged_segment_is_caught_by_its_replay_only(forge, tmp_path, store, honest):
    forged = run_experiment(_opts(tmp_path / "forged", sandbox=False), store=store, train_segment=forge)
    m = forged.manifest
    assert m.boundaries[1] == honest.manifest.boundaries[1]  # honest up to the forged segment
    # replay from the store only (no run dir): what a verifier sees
    job = _replay(m, store, tmp_path / "w")
    results = [replay_segment(job, i) for i in range(m.segments)]
    assert [r.status for r in results] == ["match", "mismatch", "match"]
    assert results[1].produced_hash != m.boundaries[2].state_hash
    if forge is _other_data:  # far outside any honest tolerance
        assert results[1].distance > 0.05
    else:  # a one-ulp jump hides below tolerance: only exact mode catches it
        assert 0 < results[1].distance < 1e-4


def test_mismatch_in_a_different_environment_abstains(tmp_path, store):
    forged = run_experiment(_opts(tmp_path / "forged", sandbox=False), store=store, train_segment=_other_data)
    env = dict(forged.manifest.environment, torch="0.0.0-other")
    m = dataclasses.replace(forged.manifest, environment=env)
    r = replay_segment(_replay(m, store, tmp_path / "w"), 1)
    assert r.status == "environment_differs" and r.environment_differences == ["torch"]
    # tolerance mode compares parameters instead: a forged segment is far outside
    r = replay_segment(_replay(m, store, tmp_path / "w2", mode="tolerance", threshold=0.01), 1)
    assert r.status == "mismatch" and r.distance > 0.01


def test_crashed_run_resumes_to_the_same_result(tmp_path, store, honest):
    out = tmp_path / "crash"

    def crash_at_step_6(step, loss, segment, total):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(_opts(out), store=store, on_progress=crash_at_step_6)
    assert not (out / "manifest.json").exists() and (out / "progress.json").exists()
    resumed = run_experiment(_opts(out), store=store)
    assert resumed.resumed_from == 1
    assert resumed.manifest.merkle_root == honest.manifest.merkle_root
    assert resumed.manifest.final_weights_cid == honest.manifest.final_weights_cid


def test_worker_argv_is_a_plain_fresh_python_command(tmp_path):
    argv = worker_argv()
    assert argv == [sys.executable, "-m", "arledger.runner.worker", "request.json"]
    assert worker_argv("/opt/python/bin/python3")[0] == "/opt/python/bin/python3"
    # it runs in its request dir; without a request.json it answers an error, not a traceback
    p = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 1 and json.loads(p.stdout)["ok"] is False


def test_normalized_distance_is_zero_for_identical_and_positive_otherwise(honest):
    run = honest.manifest_path.parent
    a, b, c = (ckpt_path(run, i) for i in (0, 1, 2))
    assert normalized_distance(b, b, a) == 0.0
    assert normalized_distance(c, b, a) > 0.1


def test_a_new_run_in_an_old_run_dir_leaves_no_stale_checkpoints(tmp_path, store):
    out = tmp_path / "reuse"
    run_experiment(_opts(out), store=store)
    r = run_experiment(dataclasses.replace(_opts(out), steps=4, segment_steps=2), store=store)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "ckpt_0000.safetensors", "ckpt_0001.safetensors", "ckpt_0002.safetensors"]
    assert r.manifest.segments == 2 and r.resumed_from is None


class _Recording:
    """An executor that records every request and its request dir's contents, then runs it."""

    def __init__(self, base):
        self.base, self.seen = base, []

    def _execute(self, directory, req):
        self.seen.append({"label": req.label, "dir": directory, "body": dict(req.body), "inputs": dict(req.inputs),
                          "files": sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))})
        return self.base._execute(self, directory, req)


class RecordingSubprocess(_Recording, SubprocessExecutor):
    def __init__(self, root):
        SubprocessExecutor.__init__(self, root)
        _Recording.__init__(self, SubprocessExecutor)


class RecordingInProcess(_Recording, InProcessExecutor):
    def __init__(self, root):
        InProcessExecutor.__init__(self, run_request, root)
        _Recording.__init__(self, InProcessExecutor)


def test_a_segment_request_holds_the_code_the_training_split_and_the_start_checkpoint(honest, store, tmp_path):
    m = honest.manifest
    ex = RecordingSubprocess(tmp_path / "claim")
    r = replay_segment(_replay(m, store, tmp_path / "w", executor=ex), 2)
    assert r.status == "match"
    (req,) = ex.seen
    assert req["label"] == "segment-0002" and req["dir"] == tmp_path / "claim" / "segment-0002"
    assert set(req["inputs"]) == {"code", "data/train", "start.safetensors"}  # no held-out split
    assert req["inputs"]["start.safetensors"].name == "ckpt_0002.safetensors"
    body = req["body"]  # every path relative to the request dir: the same on every machine
    assert body["mode"] == "segment" and body["data"] == {"train": "data/train"} and body["code"] == "code"
    assert (body["start"], body["steps"], body["seed"], body["threads"]) == ("start.safetensors", K, SEED, 1)
    assert "request.json" in req["files"] and "data/val" not in req["files"]
    assert not (tmp_path / "claim" / "segment-0002").exists(), "the request dir is removed after the run"


def test_only_the_harness_sees_the_held_out_split(honest, store, tmp_path):
    m = honest.manifest
    claim, harness = RecordingSubprocess(tmp_path / "claim"), RecordingInProcess(tmp_path / "harness")
    ev = evaluate_final(_replay(m, store, tmp_path / "w", executor=claim, harness_executor=harness))
    assert ev.ok and round(ev.metrics["val_ce"] * 1e6) == m.evaluation.value_micro
    assert [q["body"]["mode"] for q in claim.seen] == ["predict"]
    (pred,) = claim.seen
    assert set(pred["inputs"]) == {"code", "data/train", "inputs.safetensors", "m0.safetensors"}
    assert pred["body"]["data"] == {"train": "data/train"} and pred["body"]["kind"] == "weights"
    assert [q["body"]["op"] for q in harness.seen] == ["inputs", "score"]
    for q in harness.seen:
        assert q["body"]["mode"] == "harness" and q["body"]["data"] == {"train": "data/train", "val": "data/val"}
        assert {"harness", "data/train", "data/val"} <= set(q["inputs"]) and "code" not in q["inputs"]
