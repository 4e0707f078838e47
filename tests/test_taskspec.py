"""TaskSpec: built from a template (data and code pinned, baseline measured), validated, checked."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from arledger import taskspec
from arledger.taskspec import TaskSpecError
from arstore import EmbeddedStore

TEMPLATES = Path(__file__).resolve().parents[1] / "client" / "arledger" / "templates"


@pytest.fixture(scope="module")
def digits_spec(tmp_path_factory):
    store = EmbeddedStore(tmp_path_factory.mktemp("store"))
    spec = taskspec.build_taskspec(TEMPLATES / "digits", store, steps=40, segment_steps=10, threads=1)
    return spec, store


def test_build_pins_code_and_data_and_measures_baseline(digits_spec):
    spec, store = digits_spec
    assert store.has(spec.baseline_code_cid)
    assert all(store.has(c) for c in spec.datasets.values())
    # The untrained classifier is near chance: ln(10) = 2.30 nats.
    assert 1.5e6 < spec.baseline_loss_micro < 3.5e6
    assert spec.segments == 4 and spec.mode == "exact"


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
        datasets = dict(spec.datasets)
        experiment = dict(spec.experiment)
        environment = {"torch": spec.environment["torch"], "device": "cpu", "threads": 1}

    assert taskspec.problems_with(M, spec) == []
    M.steps, M.environment = 80, {**M.environment, "threads": 2}
    M.datasets = {**M.datasets, "train": "bafkreiaaaa"}
    found = " | ".join(taskspec.problems_with(M, spec))
    assert "steps: run has 80" in found and "environment.threads" in found and "datasets" in found
