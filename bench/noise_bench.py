"""Seed and shard spread of the templates, and the epsilon each gets (docs/sealed-evaluation.md).

For each template: private held-out data drawn by its harness's ``sample_private`` from a fixed
bench secret (the same shards every run), cut into ``--rounds`` shards; ``--seeds`` honest runs
of the template at its own budget (experiment.json's steps), each evaluated on the public split
and every shard (``arledger.noise``). Prints the spreads and the proposed epsilon (3 sigma)
against the task default (0.001): a default below the spread lets the luckiest seed win.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from arledger import noise
from arledger.execution import kernels
from arledger.harness import load_harness
from arledger.protocol import artifacts
from arledger.runner.experiment import read_spec
from arledger.tasks import experiment_dir_of
from arstore import open_store

BENCH_SECRET = b"arledger-noise-bench"  # public on purpose: a bench, not a task
DEFAULT_EPSILON = 0.001


def run(template: str, seeds: tuple[int, ...], rounds: int, steps: int | None) -> dict:
    exp = experiment_dir_of(template)
    h = load_harness(artifacts.harness_dir_of(exp, read_spec(exp)))
    with tempfile.TemporaryDirectory(prefix=f"noise-bench-{template}-") as tmp:
        work = Path(tmp)
        private = work / "private.bin"
        private.write_bytes(h.module.sample_private(BENCH_SECRET, rounds))
        shards = noise.shard_files(exp, private, rounds, work / "shards")
        n = noise.measure(noise.NoiseRequest(exp, work / "runs", seeds, steps, None, shards),
                          open_store(f"embedded:{work / 'store'}"))
    d = n.to_dict()
    d.update(template=template, steps=steps or read_spec(exp).default_steps, rounds=rounds,
             default_epsilon=DEFAULT_EPSILON, default_below_spread=DEFAULT_EPSILON < n.epsilon)
    return d


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.noise_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--templates", default="digits,charlm")
    ap.add_argument("--seeds", type=int, default=4, help="seeds 1..N per template")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="[default: each template's experiment.json]")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    kernels.ensure(kernels.DEFAULT_PIN, reexec=True)  # the bits every party of a task computes
    for template in a.templates.split(","):
        res = run(template, tuple(range(1, a.seeds + 1)), a.rounds, a.steps)
        if a.json:
            print(json.dumps(res, sort_keys=True))
            continue
        print(f"noise_bench: {template}, {res['steps']} steps, seeds {res['seeds']}, {a.rounds} shards")
        for seed, pub, sh in zip(res["seeds"], res["public"], res["shards"]):
            print(f"  seed {seed}: {res['metric']} public {pub:.4f}  shards " + " ".join(f"{v:.4f}" for v in sh))
        print(f"  sigma over seeds: public {res['public_sigma']:.4f}, one shard {res['seed_sigma']:.4f}; "
              f"over shards {res['shard_sigma']:.4f}")
        mark = "MISS" if res["default_below_spread"] else "ok "
        print(f"  [{mark}] default epsilon {DEFAULT_EPSILON} vs proposed (3 sigma) {res['epsilon']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
