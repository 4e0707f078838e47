"""Task request files: the shipped example loads; bad fields are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arledger import tasks
from arledger.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "task-charlm.json"


def test_shipped_example_loads_with_its_terms():
    req = tasks.load_request(EXAMPLE)
    assert req.experiment_dir.name == "charlm" and req.steps == 400 and req.segment_steps == 25
    assert req.terms.reward == 10**18 and req.terms.quorum == 2 and req.terms.challenge_bond == 5 * 10**16
    over = tasks.with_overrides(req, reward=7, quorum=3, steps=100)
    assert (over.terms.reward, over.terms.quorum, over.steps) == (7, 3, 100)


def test_shipped_example_names_an_experiment_with_a_loadable_harness():
    from arledger.harness import load_harness
    from arledger.protocol.artifacts import harness_dir_of
    from arledger.runner.experiment import load_experiment

    exp = load_experiment(tasks.load_request(EXAMPLE).experiment_dir)
    h = load_harness(harness_dir_of(exp.directory, exp.spec))
    assert h.metric == "val_bpc" and h.train_splits == ("train",) and h.causal


@pytest.mark.parametrize("patch, message", [
    ({"terms": {"reward": "1 banana"}}, "terms.reward"),
    ({"terms": {"quorum": 0}}, "terms.quorum"),
    ({"terms": {"tip": "1eth"}}, "tip"),
    ({"colour": "blue"}, "colour"),
    ({"template": "no-such-template"}, "experiment"),
])
def test_bad_requests_name_the_field(tmp_path, patch, message):
    d = json.loads(EXAMPLE.read_text())
    for k, v in patch.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and k in d else v
    path = tmp_path / "task.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=message):
        tasks.load_request(path)
