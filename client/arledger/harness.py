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

This module loads a harness and runs its two steps (both in a harness process, never
in a claim's): ``make_inputs`` (what the model gets) and ``score`` (validate outputs,
compute the metric, check causality, probe losses).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

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


# -- step 1: the inputs ------------------------------------------------------------------


def check_seed(seed_hex: str | None) -> int | None:
    return None if seed_hex is None else int(hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()[:15], 16)


def perturb(x: torch.Tensor, filler: torch.Tensor, seed: int) -> tuple[torch.Tensor, list[list[int]]]:
    """Every row of ``x`` with its inputs after a random cut replaced by other held-out inputs.

    Row r keeps positions 0..cut_r and gets ``filler`` text after it, so a causal model's
    outputs at 0..cut_r are unchanged, bit for bit; a cut at the last position keeps the
    row whole, and then its outputs must not depend on the other (spliced) rows either.
    The cuts come from ``seed`` (the verifier's own), so claim code cannot know them.
    """
    if x.dim() < 2 or x.shape[1] < 2:
        raise HarnessError(f"causality check: inputs of shape {tuple(x.shape)} have no sequence dimension")
    g = torch.Generator().manual_seed(seed)
    rows, t = x.shape[0], x.shape[1]
    if len(filler) < t + 1:
        raise HarnessError(f"causality check: filler has {len(filler)} elements, needs more than {t}")
    out, plan = x.clone(), []
    for r in range(rows):
        # A quarter of the rows stay whole (cut t - 1): all of such a row is compared, so its
        # outputs may not depend on the other, spliced rows either. The rest are cut uniformly.
        whole = int(torch.randint(0, 4, (1,), generator=g)) == 0
        cut = t - 1 if whole else int(torch.randint(0, t - 1, (1,), generator=g))
        if cut < t - 1:
            for _ in range(8):  # the first replaced input must differ, or that position is not tested
                off = int(torch.randint(0, len(filler) - t, (1,), generator=g))
                if not torch.equal(filler[off + cut + 1], x[r, cut + 1]):
                    break
            out[r, cut + 1 :] = filler[off + cut + 1 : off + t]
        plan.append([r, cut])
    return out, plan


def make_inputs(h: Harness, data: Any, *, seed: int | None, probe: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors the model gets (``eval``, ``perturbed``, ``probe_train``, ``probe_val``) and the plan."""
    x, _ = h.module.eval_batch(data)
    tensors = {"eval": x.clone()}
    plan: dict[str, Any] = {"cuts": None}
    if h.causal and seed is not None:
        xp, cuts = perturb(x, h.module.filler(data), seed)
        tensors["perturbed"] = xp
        plan["cuts"] = cuts
    if probe and h.has_probe:
        for split, (px, _) in sorted(h.module.probe_batches(data).items()):
            tensors[f"probe_{split}"] = px.clone()
    return tensors, plan


# -- step 2: the score -------------------------------------------------------------------


def validate(h: Harness, outputs: Any, inputs: torch.Tensor, what: str) -> torch.Tensor:
    """Outputs must be a finite float32 tensor of ``output_shape(inputs)``."""
    want = tuple(h.module.output_shape(inputs))
    if not isinstance(outputs, torch.Tensor):
        raise HarnessError(f"{what}: not a tensor")
    if outputs.dtype != torch.float32:
        raise HarnessError(f"{what}: dtype {outputs.dtype}, the task requires torch.float32")
    if tuple(outputs.shape) != want:
        raise HarnessError(f"{what}: shape {tuple(outputs.shape)}, the task requires {want}")
    if not bool(torch.isfinite(outputs).all()):
        raise HarnessError(f"{what}: contains NaN or infinite values")
    return outputs


def causality(eval_out: torch.Tensor, perturbed_out: torch.Tensor, cuts: list[list[int]]) -> dict:
    """Rows whose outputs up to their cut changed when only later inputs did (bit-exact)."""
    bad = [[r, c] for r, c in cuts if not torch.equal(eval_out[r, : c + 1], perturbed_out[r, : c + 1])]
    return {"checked": len(cuts), "violations": len(bad), "examples": bad[:5]}


def score(h: Harness, data: Any, outputs: dict[str, torch.Tensor], cuts: list[list[int]] | None) -> dict:
    """Metrics of the eval outputs; the causality check if ``cuts``; raises HarnessError on bad outputs."""
    x, y = h.module.eval_batch(data)
    out = validate(h, outputs.get("eval"), x, "outputs[eval]")
    result: dict[str, Any] = {"metrics": _metrics(h, out, y), "causality": None}
    if cuts is not None:
        pert = validate(h, outputs.get("perturbed"), x, "outputs[perturbed]")
        result["causality"] = causality(out, pert, cuts)
    return result


def probe_losses(h: Harness, data: Any, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """The metric on the fixed train and held-out probe slices (the verifier's suspicion signal)."""
    out = {}
    for split, (px, py) in sorted(h.module.probe_batches(data).items()):
        got = validate(h, outputs.get(f"probe_{split}"), px, f"outputs[probe_{split}]")
        out[split] = _metrics(h, got, py)[h.metric]
    return out


def _metrics(h: Harness, outputs: torch.Tensor, targets: Any) -> dict[str, float]:
    m = h.module.metrics(outputs, targets)
    if not isinstance(m, dict) or h.metric not in m:
        raise HarnessError(f"{h.directory / HARNESS_FILE}: metrics() must return a dict with {h.metric!r}")
    vals = {str(k): float(v) for k, v in m.items()}
    if not all(math.isfinite(v) for v in vals.values()):
        raise HarnessError(f"harness metrics are not finite: {vals}")
    return vals
