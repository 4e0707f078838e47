"""The experiment interface: what a claim's ``train.py`` supplies, and how the runner loads it.

An experiment directory (the claim's code) holds exactly two files that matter:

- ``experiment.json``: name, hyper-parameters (``config``), the task harness it is
  written for (``harness``: a directory relative to this one, used when no task is
  given) and the default budget (``defaults.steps``, ``defaults.segment_steps``).
- ``train.py``: module-level functions (the runner owns the loop, RNGs, data order
  and checkpoints; train.py only says what one step is):

    load_data(paths: dict[str, Path], config: dict) -> Any          (optional)
    build(config: dict, data) -> (torch.nn.Module, torch.optim.Optimizer)
    batch(data, rng: torch.Generator, step: int) -> Any
    train_step(model, optimizer, batch) -> float                      (the loss)

``paths`` holds the task's training splits only. There is no ``evaluate``: the task's
harness (``arledger.harness``) feeds the model inputs and scores its outputs in a
process of its own. See docs/experiment-interface.md for a complete example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from arledger.errors import ExperimentError
from arledger.modfile import import_file

TRAIN_FILE = "train.py"
SPEC_FILE = "experiment.json"
REQUIRED = ("build", "batch", "train_step")
CODE_FILES = (TRAIN_FILE, SPEC_FILE)


@dataclass(frozen=True)
class ExperimentSpec:
    """The parsed ``experiment.json``."""

    name: str
    harness: str | None  # a directory relative to the experiment dir (used without a task)
    config: dict[str, Any]
    default_steps: int | None
    default_segment_steps: int | None


@dataclass
class Experiment:
    """A loaded experiment: its spec plus the train.py functions."""

    directory: Path
    spec: ExperimentSpec
    module: ModuleType

    def load_data(self, paths: dict[str, Path]) -> Any:
        fn: Callable | None = getattr(self.module, "load_data", None)
        return fn(paths, self.spec.config) if fn else dict(paths)

    def build(self, data: Any):
        out = self.module.build(self.spec.config, data)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ExperimentError(f"{self.directory / TRAIN_FILE}: build() must return (model, optimizer)")
        return out

    def batch(self, data: Any, rng, step: int) -> Any:
        return self.module.batch(data, rng, step)

    def train_step(self, model, optimizer, batch) -> float:
        return float(self.module.train_step(model, optimizer, batch))


def parse_spec(raw: Any, source: str = SPEC_FILE) -> ExperimentSpec:
    """Validate experiment.json's structure; errors name the field."""
    if not isinstance(raw, dict):
        raise ExperimentError(f"{source}: must be a JSON object")

    def need(key: str, typ: type | tuple, where: dict = raw, prefix: str = ""):
        if key not in where:
            raise ExperimentError(f"{source}: missing field '{prefix}{key}'")
        if not isinstance(where[key], typ) or isinstance(where[key], bool) and typ is int:
            raise ExperimentError(f"{source}: field '{prefix}{key}' has the wrong type")
        return where[key]

    name = need("name", str)
    config = need("config", dict)
    harness = raw.get("harness")
    if harness is not None and (not isinstance(harness, str) or not harness or harness.startswith("/")
                                or ".." in Path(harness).parts):
        raise ExperimentError(f"{source}: field 'harness' must be a directory inside the experiment's")
    for legacy in ("metric", "datasets"):
        if legacy in raw:
            raise ExperimentError(f"{source}: field '{legacy}' belongs to the task harness now "
                                  f"(docs/experiment-interface.md); remove it")
    defaults = raw.get("defaults") or {}
    for key in ("steps", "segment_steps"):
        if key in defaults and (not isinstance(defaults[key], int) or defaults[key] < 1):
            raise ExperimentError(f"{source}: field 'defaults.{key}' must be a positive integer")
    return ExperimentSpec(name=name, harness=harness, config=config, default_steps=defaults.get("steps"),
                          default_segment_steps=defaults.get("segment_steps"))


def read_spec(directory: Path | str) -> ExperimentSpec:
    """``experiment.json`` of an experiment dir, validated, WITHOUT importing ``train.py``
    (importing runs its code: a caller that may not trust it reads only this)."""
    directory = Path(directory)
    spec_path, train_path = directory / SPEC_FILE, directory / TRAIN_FILE
    for p in (spec_path, train_path):
        if not p.is_file():
            raise ExperimentError(f"{p}: missing (an experiment dir needs {TRAIN_FILE} and {SPEC_FILE})")
    try:
        raw = json.loads(spec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{spec_path}: invalid JSON ({exc})") from exc
    return parse_spec(raw, str(spec_path))


def load_experiment(directory: Path | str) -> Experiment:
    """Load ``experiment.json`` and import ``train.py`` from ``directory`` (no sys.path change)."""
    directory = Path(directory)
    spec = read_spec(directory)
    module = import_file(directory / TRAIN_FILE, "arledger_experiment", ExperimentError, REQUIRED)
    return Experiment(directory=directory, spec=spec, module=module)
