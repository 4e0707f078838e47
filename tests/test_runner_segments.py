"""Segmented runs and replays on the real digits template (tiny budgets), real store.

Each replay is a real fresh process (python -m arledger.runner.replay_worker).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from arledger import checkpoint
from arledger.runner import RunOptions, replay_segment, run_experiment, worker_argv
from arledger.runner.loop import ckpt_path
from arledger.runner.replay import normalized_distance
from arledger.templates import template_dir
from arstore.embedded import EmbeddedStore

DIGITS = template_dir("digits")
STEPS, K, SEED = 12, 4, 3


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
    if i == 1:  # trained on the validation split instead of train
        d = session.data
        swapped = type(d).__new__(type(d))
        swapped.__dict__.update(d.__dict__, x_train=d.x_val, y_train=d.y_val)
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


def test_same_seed_in_two_processes_gives_identical_state_hashes(honest, tmp_path):
    code = (
        "import sys,json; from arledger.runner import *; from arstore.embedded import EmbeddedStore;"
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


def test_replay_of_every_segment_matches(honest, store):
    m = honest.manifest
    results = [replay_segment(m, i, store=store) for i in range(m.segments)]
    assert [r.status for r in results] == ["match"] * m.segments
    assert all(r.produced_hash == m.boundaries[r.segment + 1].state_hash for r in results)


@pytest.mark.parametrize("forge", [_flip_one_weight_byte, _other_data], ids=["flipped-byte", "other-data"])
def test_forged_segment_is_caught_by_its_replay_only(forge, tmp_path, store, honest):
    forged = run_experiment(_opts(tmp_path / "forged"), store=store, train_segment=forge)
    m = forged.manifest
    assert m.boundaries[1] == honest.manifest.boundaries[1]  # honest up to the forged segment
    # replay from the store only (no run dir): what a verifier sees
    results = [replay_segment(m, i, store=store) for i in range(m.segments)]
    assert [r.status for r in results] == ["match", "mismatch", "match"]
    assert results[1].produced_hash != m.boundaries[2].state_hash
    if forge is _other_data:  # far outside any honest tolerance
        assert results[1].distance > 0.05
    else:  # a one-ulp jump hides below tolerance: only exact mode catches it
        assert 0 < results[1].distance < 1e-4


def test_mismatch_in_a_different_environment_abstains(tmp_path, store):
    forged = run_experiment(_opts(tmp_path / "forged"), store=store, train_segment=_other_data)
    env = dict(forged.manifest.environment, torch="0.0.0-other")
    m = dataclasses.replace(forged.manifest, environment=env)
    r = replay_segment(m, 1, store=store)
    assert r.status == "environment_differs" and r.environment_differences == ["torch"]


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
    argv = worker_argv(tmp_path / "req.json")
    assert argv[1:] == ["-m", "arledger.runner.replay_worker", str(tmp_path / "req.json")]
    p = subprocess.run(worker_argv(tmp_path / "missing.json"), capture_output=True, text=True)
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


def test_execute_hook_gets_the_worker_argv_its_scratch_dir_and_the_inputs(honest, store, tmp_path):
    seen = {}

    def execute(argv, workdir, readable):  # what a sandbox receives
        seen.update(argv=argv, workdir=workdir, readable=readable)
        p = subprocess.run(argv, capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    r = replay_segment(honest.manifest, 2, store=store, workdir=tmp_path / "w", execute=execute)
    assert r.status == "match"
    assert seen["argv"] == worker_argv(tmp_path / "w" / "request.json") and seen["workdir"] == tmp_path / "w"
    names = {p.name for p in seen["readable"]}
    assert "ckpt_0002.safetensors" in names and "code" in names and len(names) == 4  # code, 2 datasets, ckpt
