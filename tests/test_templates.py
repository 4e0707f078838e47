"""The two shipped templates train, for real, to clearly better than chance in < 2 minutes;
each is a claim side (train.py, experiment.json) and a task harness (harness/harness.py)."""

from __future__ import annotations

import json
import math
import time

import pytest

from arledger.harness import load_harness
from arledger.protocol import run_experiment, RunOptions
from arledger.runner.experiment import load_experiment
from arledger.templates import NAMES, template_dir
from arstore import bytes_cid, EmbeddedStore

METRICS = {"charlm": "val_bpc", "digits": "val_ce"}


def _harness(name: str):
    return load_harness(template_dir(name) / "harness")


@pytest.mark.parametrize("name", NAMES)
def test_template_follows_the_experiment_interface(name):
    exp = load_experiment(template_dir(name))
    assert exp.spec.default_steps % exp.spec.default_segment_steps == 0
    assert exp.spec.harness == "harness"
    raw = json.loads((template_dir(name) / "experiment.json").read_text())
    assert "metric" not in raw and "datasets" not in raw  # the harness owns both now
    # claim code has no say in its own score
    assert not hasattr(exp.module, "evaluate") and not hasattr(exp.module, "probe")
    h = _harness(name)
    assert h.metric == METRICS[name] and h.train_splits == ("train",) and h.has_probe
    assert h.causal is (name == "charlm")


def test_datasets_are_built_deterministically_and_split_by_a_fixed_rule():
    h = _harness("charlm")
    a, b = h.build_data(), h.build_data()
    assert {k: bytes_cid(v) for k, v in a.items()} == {k: bytes_cid(v) for k, v in b.items()}
    total = len(a["train"]) + len(a["val"])
    assert len(a["val"]) == total // 10 and max(a["train"] + a["val"]) < 128
    d = _harness("digits").build_data()
    assert d == _harness("digits").build_data() and set(d) == {"train", "val"}


@pytest.mark.parametrize("name", NAMES)
def test_train_py_loads_only_the_training_split(name, tmp_path):
    blobs = _harness(name).build_data()
    (tmp_path / "train").write_bytes(blobs["train"])
    exp = load_experiment(template_dir(name))
    data = exp.load_data({"train": tmp_path / "train"})  # the only split the runner hands it
    model, _ = exp.build(data)
    assert model is not None


@pytest.mark.slow
def test_digits_trains_well_beyond_chance(tmp_path):
    t0 = time.perf_counter()
    r = run_experiment(RunOptions(template_dir("digits"), tmp_path / "run", seed=1),
                       store=EmbeddedStore(tmp_path / "store"))
    assert time.perf_counter() - t0 < 120
    assert r.manifest.train_splits == ("train",) and r.manifest.evaluation.metric == "val_ce"
    metrics = {k: v / 1e6 for k, v in r.manifest.evaluation.metrics_micro.items()}
    assert set(metrics) == {"val_ce", "val_accuracy"}  # what the harness computes, nothing from train.py
    assert metrics["val_ce"] < 0.6 < math.log(10)  # chance: ln 10 = 2.30 nats
    assert metrics["val_accuracy"] > 0.85  # chance: 0.10


@pytest.mark.slow
def test_charlm_trains_well_beyond_chance(tmp_path):
    t0 = time.perf_counter()
    r = run_experiment(RunOptions(template_dir("charlm"), tmp_path / "run", seed=1),
                       store=EmbeddedStore(tmp_path / "store"))
    assert time.perf_counter() - t0 < 120
    bpc = r.manifest.evaluation.value
    assert r.manifest.evaluation.metric == "val_bpc"
    assert bpc < 3.6  # uniform over 128 symbols: 7 bits; unigram entropy of the corpus: ~4.5 bits
