"""The loss probe and the sampling it drives: the picks that catch data substitution.

Real parts: real charlm / digits training runs, the real replay worker (fresh process
and a sandboxed zygote pool), the task harness's probe (``probe_batches``), the real
ClaimChecker on an embedded store. Asserted:

- ``probe_scores`` and the segment-0 extrapolation score rank a forged segment first,
  and a forged segment 2 does not inflate segment 0's score;
- ``sample_segments`` picks the top probe segment besides the growth pick, and turns
  probe picks into random picks when there is no probe;
- ``probe_checkpoints`` (the claim's model on the harness's probe slices, the harness
  scores) returns one {train, val} per checkpoint, the same in the verifier's sandbox,
  and its scores put a validation-trained charlm segment first (its val loss drops
  more than its train loss); a harness without ``probe_batches`` gives None, and a
  model whose probe outputs are unusable gives None or a ReplayError, which the checker
  turns into no probe (random picks);
- ``ClaimChecker.check`` with only a probe pick challenges the data-substituted segment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arledger import attacks, taskspec
from arledger.runner import RunOptions, run_experiment
from arledger.runner import replay
from arledger.runner.replay import assess, ReplayError, probe_checkpoints
from arledger.templates import template_dir
from arstore import EmbeddedStore
from arverifier.check import ClaimChecker, policy_of
from arverifier.sandbox import Sandbox
from arverifier.sampling import (SamplingPolicy, fused_scores, probe_scores, robust_z, sample_segments,
                                 suspicion_scores)
from bench.verify_bench import TASK_ID, TRAINER, _claim_info

SEED = b"\x42" * 32
VERIFIER = "0x" + "ab" * 20
FORGED = 2  # the data-substituted segment of the charlm run


def test_probe_scores_are_val_drop_minus_train_drop():
    probes = [{"train": 4.0, "val": 4.1}, {"train": 3.0, "val": 3.2}, {"train": 2.9, "val": 2.7}]
    assert probe_scores(probes) == pytest.approx([(4.1 - 3.2) - (4.0 - 3.0), (3.2 - 2.7) - (3.0 - 2.9)])


def test_segment0_is_scored_against_the_extrapolated_decay():
    honest = [0.0868, 0.0577, 0.0472, 0.0405, 0.0382, 0.0360, 0.0351, 0.0339]  # charlm, 16 x 25 steps
    jump0 = [0.1386, 0.0408, 0.0355, 0.0368, 0.0346, 0.0339, 0.0344, 0.0345]  # 3x the steps in segment 0
    jump2 = [0.0555, 0.0316, 0.0671, 0.0223]  # forged segment 2 must not inflate segment 0
    assert suspicion_scores(honest)[0] < 1.0 < suspicion_scores(jump0)[0]
    assert max(range(8), key=lambda i: suspicion_scores(jump0)[i]) == 0
    assert max(range(4), key=lambda i: suspicion_scores(jump2)[i]) == 2
    assert suspicion_scores([0.1, 0.05])[0] == 0.0, "fewer than 3 segments: no extrapolation"


def test_sample_adds_the_top_probe_pick_and_falls_back_to_random_without_probe():
    norms = [0.09, 0.06, 0.05, 0.04, 0.06, 0.035, 0.034, 0.033]  # growth points at segment 4
    probe = [-0.2, 0.0, 0.01, 0.3, 0.02, -0.25, 0.0, 0.01]  # val-trained segment 3
    pol = SamplingPolicy(random_segments=1, suspicious_segments=1, probe_segments=1)
    s = sample_segments(7, VERIFIER, SEED, 8, norms, pol, probe=probe)
    assert s.suspicious == (4,) and s.probe == (3,) and len(s.random) == 1
    assert set(s.segments) == {3, 4, *s.random} and len(s.segments) == 3
    assert s.as_dict()["probe"] == [3]
    # the growth pick already holds the top probe segment: the next probe segment is taken
    s2 = sample_segments(7, VERIFIER, SEED, 8, norms, pol, probe=[0, 0, 0, 0, 0.5, 0, 0.4, 0])
    assert s2.suspicious == (4,) and s2.probe == (6,)
    none = sample_segments(7, VERIFIER, SEED, 8, norms, pol, probe=None)
    assert none.probe == () and len(none.random) == 2 and len(none.segments) == 3
    with pytest.raises(ValueError, match="3 probe scores for 8 segments"):
        sample_segments(7, VERIFIER, SEED, 8, norms, pol, probe=[0.0] * 3)
    # the default policy (no probe picks) is unchanged
    assert sample_segments(7, VERIFIER, SEED, 8, norms).segments == sample_segments(
        7, VERIFIER, SEED, 8, norms, SamplingPolicy(1, 1, 0), probe=probe).segments


# charlm, 16 segments of 25 steps (bench runs): update norms and probe scores
JUMP1 = ([0.0861, 0.1091, 0.0351, 0.0331, 0.0359, 0.0349, 0.0347, 0.0342, 0.0353, 0.0354, 0.0364, 0.0381,
          0.0398, 0.0382, 0.038, 0.0391],
         [-0.123, -0.045, -0.012, 0.023, -0.077, 0.13, -0.023, -0.041, 0.125, -0.04, -0.027, -0.013, -0.01,
          -0.021, 0.058, -0.012])
DSUB3 = ([0.0861, 0.0527, 0.0473, 0.047, 0.0399, 0.036, 0.0339, 0.0327, 0.0329, 0.0335, 0.0342, 0.0358, 0.037,
          0.0367, 0.0374, 0.0392],
         [-0.123, 0.007, -0.057, 0.3, -0.289, 0.062, -0.008, -0.065, 0.122, -0.043, -0.027, -0.013, -0.034,
          -0.015, 0.038, -0.043])


def test_fused_suspicion_puts_a_jump_and_a_substitution_first_with_one_pick():
    for (norms, probe), forged in ((JUMP1, 1), (DSUB3, 3)):
        fused = fused_scores(norms, probe)
        assert max(range(16), key=lambda i: fused[i]) == forged
        pol = SamplingPolicy(random_segments=0, suspicious_segments=1, suspicion="fused")
        assert pol.wants_probe and sample_segments(9, VERIFIER, SEED, 16, norms, pol, probe=probe).suspicious == (forged,)
    # growth alone misses the substitution (its update grows by < 1 %)
    assert sample_segments(9, VERIFIER, SEED, 16, DSUB3[0], SamplingPolicy(0, 1)).suspicious != (3,)
    assert robust_z([1.0, 1.0, 1.0, 2.0])[3] > 1e6, "zero MAD: any outlier is extreme"
    with pytest.raises(ValueError, match="suspicion: 'loss'"):
        SamplingPolicy(suspicion="loss")
    assert not SamplingPolicy(1, 1, 0, "growth").wants_probe


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("probe-store"))


@pytest.fixture(scope="module")
def forged(tmp_path_factory, store):
    """charlm, 160 steps in 4 segments of 40, segment 2 trained on the validation split."""
    out = tmp_path_factory.mktemp("probe-runs") / "dsub"
    return run_experiment(RunOptions(template_dir("charlm"), out, 160, 40, 3, 1, task_id=TASK_ID, trainer=TRAINER),
                          store=store,
                          train_segment=attacks.data_substitution([FORGED]))


def _probes(result, workdir, **kw):
    job = replay(result.manifest, run_dir=result.manifest_path.parent, workdir=workdir, **kw)
    return probe_checkpoints(job)


def test_harness_probe_ranks_the_validation_trained_segment_first(forged, tmp_path):
    probes = _probes(forged, tmp_path / "probe")
    assert len(probes) == forged.manifest.segments + 1 == 5
    assert all(set(p) == {"train", "val"} and 0 < p["val"] < 8 and 0 < p["train"] < 8 for p in probes)
    scores = probe_scores(probes)
    assert max(range(4), key=lambda i: scores[i]) == FORGED, scores
    # the signal: training on the validation split drops the val loss more than the train loss
    a, b = probes[FORGED], probes[FORGED + 1]
    assert a["val"] - b["val"] > a["train"] - b["train"] > 0, probes
    assert scores[FORGED] > 0 and all(scores[i] < scores[FORGED] for i in range(4) if i != FORGED)


def test_sandboxed_probe_agrees_with_the_trainers(forged, tmp_path):
    """The verifier's probe (claim model and harness in the bwrap zygote pool) gives the
    trainer's numbers bit for bit: the picks do not depend on who computes them."""
    with Sandbox(backend="bwrap").pool_executor() as ex:
        boxed = _probes(forged, tmp_path / "boxed", executor=ex, harness_executor=ex)
    assert boxed == _probes(forged, tmp_path / "plain")


def _without_probe(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    shutil.copytree(template_dir("digits"), exp, ignore=shutil.ignore_patterns("__pycache__"))
    h = exp / "harness" / "harness.py"
    src = h.read_text()
    assert "def probe_batches(" in src
    h.write_text(src.replace("def probe_batches(", "def _no_probe_batches("))
    return exp


def test_harness_without_probe_gives_none(tmp_path, store):
    res = run_experiment(RunOptions(_without_probe(tmp_path), tmp_path / "run", 4, 2, 1, 1), store=store)
    assert _probes(res, tmp_path / "probe") is None
    # digits' own harness has one: the same run shape gives N+1 probes
    res = run_experiment(RunOptions(template_dir("digits"), tmp_path / "run2", 4, 2, 1, 1), store=store)
    probes = _probes(res, tmp_path / "probe2")
    assert len(probes) == 3 and all(set(p) == {"train", "val"} for p in probes)


# Hostile models: outputs on the probe slices (32 windows of 64; training batches have 16
# rows, evaluation chunks 64) that the harness must refuse. The run itself is honest.
HOSTILE_FORWARD = {
    "nan": "return torch.full_like(out, float('nan'))",
    "shape": "return out[..., :VOCAB // 2]",
    "not_a_tensor": "return {'logits': out}",
}


@pytest.mark.parametrize("name", list(HOSTILE_FORWARD))
def test_unusable_probe_outputs_give_no_probe(tmp_path, store, name):
    exp = tmp_path / "exp"
    shutil.copytree(template_dir("charlm"), exp, ignore=shutil.ignore_patterns("__pycache__"))
    src = (exp / "train.py").read_text()
    old = "        return self.head(self.ln(self.blocks(x)))\n"
    assert old in src
    (exp / "train.py").write_text(src.replace(old, (
        "        out = self.head(self.ln(self.blocks(x)))\n"
        "        if not self.training and idx.shape[0] == 32:\n"
        f"            {HOSTILE_FORWARD[name]}\n"
        "        return out\n")))
    res = run_experiment(RunOptions(exp, tmp_path / "run", 4, 2, 1, 1), store=store)
    job = replay(res.manifest, run_dir=res.manifest_path.parent, workdir=tmp_path / "probe")
    a = assess(job, None, None, probe=True)
    assert a.probes is None  # the probe only samples: a model that fails it is no accusation
    if name == "not_a_tensor":  # the prediction itself failed, and says why
        assert "forward returned dict, not a tensor" in a.probe_problem
    else:  # the harness rejected the outputs, and says why
        assert a.probe_problem
    assert probe_checkpoints(job) is None
    checker = ClaimChecker(store, VERIFIER, workdir=tmp_path / "work")
    assert checker.probe(job) is None, "a broken probe buys nothing: the picks become random ones"


def test_checker_probe_pick_challenges_the_substituted_segment(tmp_path, store, forged):
    spec = taskspec.build_taskspec(template_dir("charlm"), store, steps=160, segment_steps=40,
                                   sampling={"random_segments": 0, "suspicious_segments": 0, "probe_segments": 1})
    assert policy_of(spec) == SamplingPolicy(0, 0, 1)
    checker = ClaimChecker(store, VERIFIER, workdir=tmp_path / "work")
    try:
        v = checker.check(_claim_info(forged.manifest, forged.manifest_cid, 5, SEED), spec)
    finally:
        checker.close()
    assert v.decision == "challenge", v.reason
    assert v.challenge.kind == "Segment" and v.challenge.segment == FORGED
    assert [r["segment"] for r in v.replays] == [FORGED], "the probe pick is the only replay"


def test_fused_falls_back_to_growth_below_eight_segments():
    norms, probe = [0.0555, 0.0316, 0.0671, 0.0223], [0.0112, -0.0743, -0.0553, -0.0517]  # jump at 2
    pol = SamplingPolicy(0, 1, 0, "fused")
    assert not pol.needs_probe(4) and pol.needs_probe(8)
    assert sample_segments(3, VERIFIER, SEED, 4, norms, pol, probe=probe).suspicious == (2,)
