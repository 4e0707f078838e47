"""The charlm runs the verification benches train, and what a verifier measures of them.

Shared by ``bench.verify_bench`` and ``bench.adversary`` (which verify_bench runs as one of
its sections): neither imports the other's internals.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from arledger import outdir
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


def fork(base: Path, store: Any, honest: Any, name: str, at: int, hook):
    """A forged run that shares the honest run's first ``at`` segments: its checkpoints up to
    ``at`` are copied and the run resumes there (run_experiment's own resume, its hashes
    checked), so only the segments from the forgery on are trained. The bits are those of a
    whole forged run with the same seed: training is deterministic and the prefix is honest."""
    m, src, out = honest.manifest, honest.manifest_path.parent, base / name
    (out / "checkpoints").mkdir(parents=True)
    (out / outdir.MARKER).write_text(json.dumps({"made_by": "artrain run"}) + "\n")
    for b in m.boundaries[:at + 1]:
        name_ = f"ckpt_{b.index:04d}.safetensors"
        shutil.copyfile(src / "checkpoints" / name_, out / "checkpoints" / name_)
    params = {"code_cid": m.code_cid, "harness_cid": m.harness_cid, "datasets": m.datasets, "seed": m.seed,
              "steps": m.steps, "segment_steps": m.segment_steps, "threads": int(m.environment["threads"])}
    progress = {"params": params, "boundaries": [b.__dict__ for b in m.boundaries[:at + 1]], "timings": {}}
    (out / "progress.json").write_text(json.dumps(progress, sort_keys=True))
    res = train(base, store, name, m.seed, m.steps, m.segment_steps, hook)
    if res.resumed_from != at:
        raise RuntimeError(f"{name}: the fork did not resume at checkpoint {at} (resumed from {res.resumed_from})")
    return res


def norms(checker: Any, result: Any, work: Path) -> tuple[list[float], list[float]]:
    """The update norms and consecutive-update cosines a verifier measures from the checkpoints."""
    return checker.update_stats(ArtifactSource(result.manifest, work, run_dir=result.manifest_path.parent),
                                result.manifest)
