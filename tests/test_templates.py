"""The two shipped templates train, for real, to clearly better than chance in < 2 minutes."""

from __future__ import annotations

import math
import time

import pytest

from arledger.runner import RunOptions, load_experiment, run_experiment
from arledger.templates import NAMES, template_dir
from arledger.templates.charlm import data as charlm_data
from arledger.templates.digits import data as digits_data
from arstore import EmbeddedStore, bytes_cid


@pytest.mark.parametrize("name", NAMES)
def test_template_follows_the_experiment_interface(name):
    exp = load_experiment(template_dir(name))
    assert exp.spec.default_steps % exp.spec.default_segment_steps == 0
    assert exp.spec.datasets.builder == f"arledger.templates.{name}.data"


def test_datasets_are_built_deterministically_and_split_by_a_fixed_rule():
    a, b = charlm_data.build(), charlm_data.build()
    assert {k: bytes_cid(v) for k, v in a.items()} == {k: bytes_cid(v) for k, v in b.items()}
    total = len(a["train"]) + len(a["val"])
    assert len(a["val"]) == total // 10 and max(a["train"] + a["val"]) < 128
    d = digits_data.build()
    assert d == digits_data.build() and set(d) == {"train", "val"}


@pytest.mark.slow
def test_digits_trains_well_beyond_chance(tmp_path):
    t0 = time.perf_counter()
    r = run_experiment(RunOptions(template_dir("digits"), tmp_path / "run", seed=1),
                       store=EmbeddedStore(tmp_path / "store"))
    assert time.perf_counter() - t0 < 120
    metrics = {k: v / 1e6 for k, v in r.manifest.evaluation.metrics_micro.items()}
    assert metrics["val_ce"] < 0.6 < math.log(10)  # chance: ln 10 = 2.30 nats
    assert metrics["val_accuracy"] > 0.85  # chance: 0.10
    assert metrics["params"] > 1000 and metrics["flops_per_example"] > 1e5


@pytest.mark.slow
def test_charlm_trains_well_beyond_chance(tmp_path):
    t0 = time.perf_counter()
    r = run_experiment(RunOptions(template_dir("charlm"), tmp_path / "run", seed=1),
                       store=EmbeddedStore(tmp_path / "store"))
    assert time.perf_counter() - t0 < 120
    bpc = r.manifest.evaluation.value
    assert r.manifest.evaluation.metric == "val_bpc"
    assert bpc < 3.6  # uniform over 128 symbols: 7 bits; unigram entropy of the corpus: ~4.5 bits
