"""The experiment interface as documented: the docs' minimal example runs and replays;
broken experiment dirs give one clear error naming the file and field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from arledger.errors import ExperimentError
from arledger.runner import RunOptions, load_experiment, replay_segment, run_experiment
from arstore import EmbeddedStore

DOC = Path(__file__).resolve().parents[1] / "docs" / "experiment-interface.md"


def _doc_blocks() -> dict[str, str]:
    text = DOC.read_text()
    blocks = re.findall(r"`([\w.]+)`[^`]*?:\n\n```(?:json|python)\n(.*?)```", text, re.S)
    return {name: body for name, body in blocks}


def test_the_documented_minimal_example_trains_and_replays(tmp_path, monkeypatch):
    blocks = _doc_blocks()
    pkg = tmp_path / "pkgs" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tiny_data.py").write_text(blocks["tiny_data.py"])
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    exp = tmp_path / "my_exp"
    exp.mkdir()
    (exp / "train.py").write_text(blocks["train.py"])
    spec = re.search(r"## `experiment.json`\n\n```json\n(.*?)```", DOC.read_text(), re.S).group(1)
    (exp / "experiment.json").write_text(spec)
    store = EmbeddedStore(tmp_path / "store")
    r = run_experiment(RunOptions(exp, tmp_path / "run", seed=1), store=store)
    assert r.manifest.steps == 100 and r.manifest.segments == 4
    assert r.manifest.evaluation.value < 0.5  # the linear target is learnable
    assert replay_segment(r.manifest, 3, store=store).status == "match"


def _write(tmp_path, train: str, spec: dict) -> Path:
    (tmp_path / "train.py").write_text(train)
    (tmp_path / "experiment.json").write_text(json.dumps(spec))
    return tmp_path


SPEC = {"name": "x", "metric": "m", "config": {}, "datasets": {"builder": "x"}}


def test_missing_functions_are_named(tmp_path):
    with pytest.raises(ExperimentError, match=r"train.py: missing function\(s\) batch, train_step, evaluate"):
        load_experiment(_write(tmp_path, "def build(c, d): pass\n", SPEC))


@pytest.mark.parametrize("spec, field", [
    ({k: v for k, v in SPEC.items() if k != "metric"}, "missing field 'metric'"),
    (dict(SPEC, config=[]), "field 'config' has the wrong type"),
    (dict(SPEC, datasets={}), "field 'datasets' needs a 'builder' or 'cids'"),
    (dict(SPEC, defaults={"steps": 0}), "field 'defaults.steps' must be a positive integer"),
])
def test_bad_experiment_json_names_the_field(tmp_path, spec, field):
    with pytest.raises(ExperimentError, match=re.escape(field)):
        load_experiment(_write(tmp_path, "", spec))


def test_missing_dir_files_are_named(tmp_path):
    with pytest.raises(ExperimentError, match="experiment.json: missing"):
        load_experiment(tmp_path)
