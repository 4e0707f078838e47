"""Calibrating the tolerance threshold from honest replays in a different environment.

Why: in ``tolerance`` mode a replay passes if the normalized parameter distance
||θ_replay − θ_claim|| / ||θ_claim − θ_start|| stays under the task's threshold. The
threshold must sit well above what honest hardware noise produces and well below what
cheating produces; the only way to know is to measure. Here the "other environment"
is a different CPU thread count (it changes the bits of a transformer's reductions).

    python -m arledger.protocol.tolerance charlm --steps 200 --segment-steps 50 --train-threads 2 --replay-threads 1

prints JSON: per segment the status and distance, plus max/mean (see docs/tolerance.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from arledger.protocol.replay import replay, replay_segment, ReplayOptions
from arledger.protocol.run import run_experiment, RunOptions
from arledger.templates import template_dir
from arstore import EmbeddedStore


def calibrate(template: str, steps: int, segment_steps: int, seed: int, train_threads: int, replay_threads: int,
              workdir: Path | None = None) -> dict:
    """Train honestly with ``train_threads``, replay every segment with ``replay_threads``."""
    with tempfile.TemporaryDirectory(prefix="arledger-calib-") as tmp:
        base = Path(workdir or tmp)
        store = EmbeddedStore(base / "store")
        run = run_experiment(RunOptions(template_dir(template), base / "run", steps, segment_steps, seed,
                                        train_threads), store=store)
        job = replay(run.manifest, ReplayOptions(run_dir=base / "run", store=store, workdir=base / "replay",
                     threads=replay_threads, mode="tolerance", threshold=float("inf")))
        results = [replay_segment(job, i) for i in range(run.manifest.segments)]
    dists = [r.distance for r in results]
    return {
        "template": template, "steps": steps, "segment_steps": segment_steps, "seed": seed,
        "train_threads": train_threads, "replay_threads": replay_threads,
        "segments": [{"segment": r.segment, "status": r.status, "distance": r.distance} for r in results],
        "hash_matches": sum(r.produced_hash == r.expected_hash for r in results),
        "max_distance": max(dists), "mean_distance": statistics.fmean(dists),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m arledger.protocol.tolerance", description=__doc__.split("\n\n")[0])
    ap.add_argument("template", choices=["charlm", "digits"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--segment-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-threads", type=int, default=2)
    ap.add_argument("--replay-threads", type=int, default=1)
    a = ap.parse_args(argv)
    print(json.dumps(calibrate(a.template, a.steps, a.segment_steps, a.seed, a.train_threads, a.replay_threads),
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
