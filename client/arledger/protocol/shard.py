"""A model's evaluation on a sealed shard instead of the task's public held-out split.

A sealed task (docs/sealed-evaluation.md) keeps its public split (``val`` in the
templates) for trainers' own estimates and judges every claim on its round's shard: a
file in the same format as that split, opened after the round closed. The harness gets
the shard under the split's name, so ``eval_batch``, ``metrics`` and the causality check
run unchanged; the claim's model still gets only the evaluation inputs, in its own
sandboxed process, and the shard's bytes never reach it.

Every claim of a round is scored on the same shard, and so is its incumbent (the task's
best claim, or the baseline's weights), so the comparison that moves the best pointer is
head to head on one set of data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from arledger import checkpoint
from arledger.errors import SealedError
from arledger.protocol.replay import EvalResult, evaluate_weights, Replay
from arledger.runner.worker import ClaimCode


@dataclass(frozen=True)
class OnShard:
    """A claim's files (``ArtifactSource`` or ``RunFiles``) with the held-out split ``split``
    replaced by ``shard`` for the harness; the claim's side (``train_paths``) is unchanged."""

    files: Any
    split: str
    shard: Path

    def __getattr__(self, name: str) -> Any:  # workdir, code_dir, harness_dir, checkpoint, weights...
        return getattr(self.files, name)

    def all_paths(self) -> dict[str, Path]:
        return {**self.files.train_paths(), self.split: self.shard}


def heldout_split(datasets: dict[str, str], train_splits: tuple[str, ...]) -> str:
    """The one held-out split a shard stands in for (a sealed task needs exactly one)."""
    held = sorted(set(datasets) - set(train_splits))
    if len(held) != 1:
        raise SealedError(f"a sealed task needs exactly one held-out split to replace, this one has {held}")
    return held[0]


def evaluate_on_shard(r: Replay, shard: Path, split: str, weights: Path,
                      check_seed: bytes | None = None) -> EvalResult:
    """The harness's metrics of ``weights`` (the model ``r``'s code builds) on ``shard``."""
    return evaluate_weights(replace(r, files=OnShard(r.files, split, Path(shard))), weights, check_seed)


def baseline_weights(r: Replay, dest: Path) -> Path:
    """The baseline's weights: checkpoint 0 of its code at seed 0, built by ``r``'s executor (the
    incumbent of a sealed task until a claim beats it; anyone rebuilds the same bits)."""
    claim = ClaimCode(r.files.code_dir(), r.files.train_paths(), r.seed, r.threads)
    with r.executor.run(claim.build("baseline-weights")) as done:
        start = done.read("start.safetensors")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(checkpoint.weights_of_checkpoint(start, "the baseline's checkpoint 0"))
    return dest
