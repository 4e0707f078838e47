"""The charlm runs the verification benches train, and what a verifier measures of them.

Shared by ``bench.verify_bench`` and ``bench.adversary`` (which verify_bench runs as one of
its sections): neither imports the other's internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arledger.protocol.replay import ArtifactSource
from arledger.protocol.run import run_experiment, RunOptions
from arledger.templates import template_dir

TRAINER = "0x" + "7a" * 20
TASK_ID = 1


def train(base: Path, store: Any, name: str, seed: int, steps: int | None, segment_steps: int | None, hook=None):
    """A charlm run: honest (trained in the sandbox), or forged by ``hook`` (the cheater's own
    process: a hook trains on this process's session)."""
    kwargs = {"train_segment": hook} if hook else {}
    return run_experiment(RunOptions(template_dir("charlm"), base / name, steps, segment_steps, seed, 1,
                                     task_id=TASK_ID, trainer=TRAINER, sandbox=hook is None), store=store, **kwargs)


def norms(checker: Any, result: Any, work: Path) -> tuple[list[float], list[float]]:
    """The update norms and consecutive-update cosines a verifier measures from the checkpoints."""
    return checker.update_stats(ArtifactSource(result.manifest, work, run_dir=result.manifest_path.parent),
                                result.manifest)
