"""TaskSpec: built from a template (code, harness and data pinned, baseline measured by the
harness), validated, checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arledger import taskbuild, taskspec
from arledger.execution.limits import Limits
from arledger.harness import load_harness
from arledger.taskspec import TaskSpecError
from arstore import EmbeddedStore

TEMPLATES = Path(__file__).resolve().parents[1] / "client" / "arledger" / "templates"


@pytest.fixture(scope="module")
def digits_spec(tmp_path_factory):
    store = EmbeddedStore(tmp_path_factory.mktemp("store"))
    req = taskbuild.SpecRequest(TEMPLATES / "digits", steps=40, segment_steps=10, threads=1)
    spec = taskbuild.build_taskspec(req, store)
    return spec, store


def test_build_pins_code_and_data_and_measures_baseline(digits_spec, tmp_path):
    spec, store = digits_spec
    assert spec.schema_version == 2
    assert store.has(spec.baseline_code_cid)
    assert all(store.has(c) for c in spec.datasets.values())
    # The untrained classifier is near chance: ln(10) = 2.30 nats.
    assert 1.5e6 < spec.baseline_loss_micro < 3.5e6
    assert spec.segments == 4 and spec.mode == "exact"
    # the task harness is pinned by CID and says what claim code may read
    assert store.has(spec.harness_cid)
    store.get_dir(spec.harness_cid, tmp_path / "harness")
    h = load_harness(tmp_path / "harness")
    assert spec.train_splits == ("train",) == h.train_splits and set(spec.datasets) == {"train", "val"}
    assert spec.harness["causal"] is False and "sklearn/datasets/data" in spec.hidden_sources
    assert spec.experiment["metric"] == spec.evaluation["metric"] == h.metric == "val_ce"
    assert spec.evaluation["units"] == h.units
    # the limits default to arledger.execution.limits.Limits, read back as one
    assert spec.limits == Limits().to_dict() and spec.sandbox_limits() == Limits()


def test_charlm_spec_pins_a_causal_harness_that_hides_its_corpus(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    req = taskbuild.SpecRequest(TEMPLATES / "charlm", steps=50, segment_steps=25, baseline_loss=7.0)
    spec = taskbuild.build_taskspec(req, store)
    assert spec.harness["causal"] is True and spec.hidden_sources == ("pydoc_data",)
    assert spec.train_splits == ("train",) and spec.experiment["metric"] == "val_bpc"
    assert spec.baseline_loss_micro == 7_000_000  # given: not measured


def test_limits_schema_is_generated_from_the_limits_class():
    s = taskspec.schema()["properties"]["limits"]
    assert s == Limits.json_schema()
    assert set(s["required"]) == set(Limits().to_dict()) and s["additionalProperties"] is False


def test_bad_limits_are_refused_when_building(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    with pytest.raises(TaskSpecError, match="unknown limit"):
        req = taskbuild.SpecRequest(TEMPLATES / "digits", steps=40, segment_steps=10, limits={"gpu_seconds": 5},
                                    baseline_loss=1.0)
        taskbuild.build_taskspec(req, store)
    with pytest.raises(TaskSpecError, match=r"limits.wall_seconds: 0 is not a number in 1..86400"):
        req = taskbuild.SpecRequest(TEMPLATES / "digits", steps=40, segment_steps=10, limits={"wall_seconds": 0},
                                    baseline_loss=1.0)
        taskbuild.build_taskspec(req, store)


def test_publish_fetch_round_trip_by_digest(digits_spec):
    spec, store = digits_spec
    cid = taskspec.publish(store, spec)
    assert taskspec.fetch(store, spec.digest()) == spec
    from arstore import digest_to_cid
    assert digest_to_cid(spec.digest()) == cid


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["budget"].update(segment_steps=7), "/budget/segment_steps"),
    (lambda d: d.pop("datasets"), "datasets"),
    (lambda d: d["verification"].update(mode="tolerance"), "/verification"),
    (lambda d: d.update(baseline_code_cid="Qm123"), "/baseline_code_cid"),
    (lambda d: d.update(schema_version=1), "/schema_version"),
    (lambda d: d.pop("harness"), "'harness' is a required property"),
    (lambda d: d["harness"].pop("cid"), "/harness"),
    (lambda d: d["harness"].update(train_splits=["train", "val"]), "/harness/train_splits: must name datasets"),
    (lambda d: d["harness"].update(train_splits=["test"]), "/harness/train_splits"),
    (lambda d: d["limits"].pop("wall_seconds"), "/limits"),
    (lambda d: d["limits"].update(wall_seconds=1.5), "/limits/wall_seconds"),
    (lambda d: d["limits"].update(gpu_seconds=1), "/limits"),
])
def test_malformed_specs_name_the_field(digits_spec, mutate, field):
    spec, _ = digits_spec
    d = json.loads(spec.to_bytes())
    mutate(d)
    with pytest.raises(TaskSpecError, match=field.replace("/", "/")):
        taskspec.loads(json.dumps(d).encode())


def test_oversized_spec_is_rejected():
    with pytest.raises(TaskSpecError, match="exceeds"):
        taskspec.loads(b" " * (taskspec.MAX_BYTES + 1))


def test_problems_with_names_each_mismatch(digits_spec):
    spec, _ = digits_spec

    class M:  # the fields problems_with reads from a manifest
        steps, segment_steps = 40, 10
        harness_cid, train_splits = spec.harness_cid, spec.train_splits
        datasets = dict(spec.datasets)
        experiment = dict(spec.experiment)
        environment = {"torch": spec.environment["torch"], "device": "cpu", "threads": 1}

    assert taskspec.problems_with(M, spec) == []
    M.steps, M.environment = 80, {**M.environment, "threads": 2}
    M.datasets = {**M.datasets, "train": "bafkreiaaaa"}
    found = " | ".join(taskspec.problems_with(M, spec))
    assert "steps: run has 80" in found and "environment.threads" in found and "datasets" in found
    # a run evaluated by another harness, or whose train.py was handed a held-out split
    M.harness_cid, M.train_splits = spec.baseline_code_cid, ("train", "val")
    found = " | ".join(taskspec.problems_with(M, spec))
    assert f"harness: run was evaluated by {spec.baseline_code_cid}" in found
    assert "train_splits: run gave train.py ['train', 'val'], task allows ['train']" in found
