"""The harness's loss probe: a diagnostic that no longer ranks anything.

Sampling used to rank segments by this probe fused with update growth; but the probe's
numbers come from the claim's own model (its predictions on the probe slices), so the
claim could steer its own sample, and it was removed from sampling (issue "A budget the
claim cannot stretch"; ``tests/test_sampling.py`` asserts the sampler ignores it). The
probe stays a harness feature (``probe_batches``; ``probe_checkpoints``) a person can run
on a claim, and what is asserted here still holds for it:

- ``probe_checkpoints`` (the claim's model on the harness's probe slices, the harness
  scores) returns one {train, val} per checkpoint, the same in the verifier's sandbox,
  and a validation-trained charlm segment drops its val loss more than its train loss;
- a harness without ``probe_batches`` gives None, and a model whose probe outputs are
  unusable gives None with the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arledger import attacks
from arledger.execution.sandbox import Sandbox
from arledger.protocol import replay, ReplayOptions, run_experiment, RunOptions
from arledger.protocol.replay import assess, probe_checkpoints
from arledger.templates import template_dir
from arstore import EmbeddedStore
from bench.runs import TASK_ID, TRAINER

FORGED = 2  # the data-substituted segment of the charlm run


def probe_scores(probes):
    """(val_i - val_{i+1}) - (train_i - train_{i+1}): what the old sampler ranked by."""
    return [(a["val"] - b["val"]) - (a["train"] - b["train"]) for a, b in zip(probes, probes[1:])]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("probe-store"))


@pytest.fixture(scope="module")
def forged(tmp_path_factory, store):
    """charlm, 160 steps in 4 segments of 40, segment 2 trained on the validation split."""
    out = tmp_path_factory.mktemp("probe-runs") / "dsub"
    return run_experiment(RunOptions(template_dir("charlm"), out, 160, 40, 3, 1, task_id=TASK_ID, trainer=TRAINER,
                                     sandbox=False),
                          store=store,
                          train_segment=attacks.data_substitution([FORGED]))


def _probes(result, workdir, **kw):
    job = replay(result.manifest, ReplayOptions(run_dir=result.manifest_path.parent, workdir=workdir, **kw))
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
    job = replay(res.manifest, ReplayOptions(run_dir=res.manifest_path.parent, workdir=tmp_path / "probe"))
    a = assess(job, None, None, probe=True)
    assert a.probes is None  # the probe only samples: a model that fails it is no accusation
    if name == "not_a_tensor":  # the prediction itself failed, and says why
        assert "forward returned dict, not a tensor" in a.probe_problem
    else:  # the harness rejected the outputs, and says why
        assert a.probe_problem
    assert probe_checkpoints(job) is None
