"""The task harness: the sponsor's code that owns the data, the metric and the checks.

A task pins, by CID, a harness directory with one file, ``harness.py``. Claim code
(``train.py``) never runs in the same process as the harness and never receives
anything but the training split and the evaluation *inputs*; every number that
decides something (the verifier's evaluation, the task's baseline, ``artrain best``,
the demo's table) is computed here from the outputs the claim's model produced.

``harness.py`` provides (docs/experiment-interface.md has a complete example):

    METRIC: str                      # the metric's name, lower is better ("val_bpc")
    UNITS: str                       # its units ("bits per character")
    TRAIN_SPLITS: tuple[str, ...]    # the dataset names claim code may read; the rest is held out
    CAUSAL: bool = False             # outputs along dim 1 may depend only on inputs up to there
    build_data() -> {name: bytes}    # every split, deterministic (run when a task is created)
    load(paths: {name: Path}) -> Any # the harness's view of every split
    eval_batch(data) -> (inputs: Tensor, targets: Any)
    output_shape(inputs) -> tuple    # the shape the model's float32 outputs must have
    metrics(outputs, targets) -> {name: float}   # has METRIC
    probe_batches(data) -> {"train": (inputs, targets), "val": (inputs, targets)}   # optional
    filler(data) -> Tensor           # CAUSAL only: held-out inputs NOT in eval_batch, 1-D
    cut_shards(raw, rounds) -> [bytes]     # optional: a sealed task's shards from the sponsor's data
    sample_private(secret, rounds) -> bytes  # optional: private data for a sponsor who has none

A sealed task (docs/sealed-evaluation.md) scores claims on shards in the held-out split's
format, handed to ``load`` under that split's name; ``cut_shards`` defaults to equal byte
ranges of the sponsor's ``--heldout`` file.

This module loads a harness (without torch: the command line reads a task's harness
to describe it). ``arledger.scoring`` runs its two steps, in a harness process, never in
a claim's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from arledger.errors import HarnessError
from arledger.modfile import import_file

HARNESS_FILE = "harness.py"
REQUIRED = ("build_data", "load", "eval_batch", "output_shape", "metrics")


@dataclass
class Harness:
    directory: Path
    module: ModuleType
    metric: str
    units: str
    train_splits: tuple[str, ...]
    causal: bool

    def build_data(self) -> dict[str, bytes]:
        blobs = self.module.build_data()
        if not isinstance(blobs, dict) or not all(isinstance(v, (bytes, bytearray)) for v in blobs.values()):
            raise HarnessError(f"{self.directory / HARNESS_FILE}: build_data() must return {{name: bytes}}")
        missing = [s for s in self.train_splits if s not in blobs]
        if missing or len(blobs) == len(self.train_splits):
            raise HarnessError(f"{self.directory / HARNESS_FILE}: build_data() must return every TRAIN_SPLIT "
                               f"and at least one held-out split (missing: {missing or 'held-out'})")
        return {str(k): bytes(v) for k, v in blobs.items()}

    @property
    def has_probe(self) -> bool:
        return callable(getattr(self.module, "probe_batches", None))


def load_harness(directory: Path | str) -> Harness:
    """Import ``harness.py`` from ``directory`` (no sys.path change) and check its interface."""
    directory = Path(directory)
    path = directory / HARNESS_FILE
    if not path.is_file():
        raise HarnessError(f"{path}: missing (a task harness dir needs {HARNESS_FILE})")
    module = import_file(path, "arledger_harness", HarnessError, REQUIRED)
    for attr in ("METRIC", "UNITS"):
        if not isinstance(getattr(module, attr, None), str):
            raise HarnessError(f"{path}: {attr} must be a string")
    splits = getattr(module, "TRAIN_SPLITS", None)
    if not isinstance(splits, (tuple, list)) or not splits or not all(isinstance(s, str) for s in splits):
        raise HarnessError(f"{path}: TRAIN_SPLITS must be a non-empty tuple of dataset names")
    causal = bool(getattr(module, "CAUSAL", False))
    if causal and not callable(getattr(module, "filler", None)):
        raise HarnessError(f"{path}: a CAUSAL harness needs filler(data)")
    return Harness(directory, module, module.METRIC, module.UNITS, tuple(splits), causal)
