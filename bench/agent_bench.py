"""Agent benchmark: what the research loop costs besides training, and whether `search` finds an
improvement on charlm (ratios and counts from one run).

    python -m bench.agent_bench [--iterations 10] [--steps 400] [--segment-steps 25] [--json]

On a fresh anvil with the ledger, an embedded store and a charlm task (the template's
400 steps in segments of 25, epsilon 0.001, no verifiers: nothing here waits for one):

- ``reference``: the baseline code trained once under the task's budget (seed 0, the
  agent's seed): the loss an improvement must beat, and one charlm run's wall time.
- one agent (``search``, seed 0) runs ``--iterations`` iterations from the baseline code.
  Per iteration, ``overhead_share`` = (iteration wall time - its training) / its training;
  training is ``run_experiment`` (train, checkpoint, evaluate); the overhead is the rest:
  chain reads and history, fetches, proposing, the pre-training checks (build + one
  counted step), pinning and the transactions. Target: mean <= 0.10.
- ``improved_at``: the first iteration whose loss beats the trained baseline code by the
  task's epsilon. Target: within ``--iterations`` (10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from arledger import tasks
from arledger.agent import Agent, AgentConfig
from arledger.agent.search import SearchProposer
from arledger.devnet import LocalChain
from arledger.execution import kernels
from arledger.micro import fmt, from_micro
from arledger.protocol import run_experiment, RunOptions
from arstore import EmbeddedStore

TARGETS = {"overhead_share_mean": 0.10, "improved_within": 10}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.agent_bench")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--segment-steps", type=int, default=25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)


    kernels.ensure(kernels.DEFAULT_PIN, reexec=True)
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        tmp = Path(tmp)
        with LocalChain.start(log_file=tmp / "anvil.log") as chain:
            sponsor = chain.ledger
            store = EmbeddedStore(tmp / "store")
            charlm = tasks.experiment_dir_of("charlm")
            task_id, spec, _, _ = tasks.create_task(sponsor, store, tasks.TaskRequest(
                experiment_dir=charlm, steps=args.steps, segment_steps=args.segment_steps, min_improvement=0.001))
            t0 = time.perf_counter()
            ref = run_experiment(RunOptions(charlm, tmp / "reference", steps=spec.steps,
                                            segment_steps=spec.segment_steps, seed=0), store=store)
            run_s = time.perf_counter() - t0
            ref_loss = ref.manifest.evaluation.value_micro
            print(f"reference: the baseline code trained ({spec.steps} steps): {spec.evaluation['metric']} "
                  f"{fmt(ref_loss, 4)} in {run_s:.1f}s", flush=True)
            trainer = chain.as_account(1)
            agent = Agent(trainer, store, AgentConfig(task_id=task_id, workdir=tmp / "agent",
                                                      proposer=SearchProposer(seed=0)))
            rows = []
            for r in agent.run(iterations=args.iterations):
                share = r.seconds["overhead"] / r.seconds["train"] if r.seconds.get("train") else None
                rows.append({"iteration": r.iteration, "move": r.move, "outcome": r.outcome,
                             "loss": None if r.loss_micro is None else from_micro(r.loss_micro),
                             "beats_reference": r.loss_micro is not None
                             and r.loss_micro + spec.min_improvement_micro <= ref_loss,
                             "train_s": r.seconds["train"], "overhead_s": r.seconds["overhead"],
                             "overhead_share": share})
                print(f"  {r.summary()}  share {share:.3f}" if share is not None else f"  {r.summary()}", flush=True)
    shares = [x["overhead_share"] for x in rows if x["overhead_share"] is not None]
    improved = next((x["iteration"] for x in rows if x["beats_reference"]), None)
    trained = [x["loss"] for x in rows if x["loss"] is not None]
    out = {"reference_loss": from_micro(ref_loss), "charlm_run_s": round(run_s, 2), "iterations": rows,
           "overhead_share_mean": round(statistics.mean(shares), 4) if shares else None,
           "overhead_share_max": round(max(shares), 4) if shares else None,
           "overhead_s_mean": round(statistics.mean(x["overhead_s"] for x in rows), 3),
           "improved_at": improved, "best_loss": min(trained) if trained else None,
           "best_gain_vs_reference": round(from_micro(ref_loss) - min(trained), 6) if trained else None,
           "targets": TARGETS}
    ok = (out["overhead_share_mean"] is not None and out["overhead_share_mean"] <= TARGETS["overhead_share_mean"]
          and improved is not None and improved <= TARGETS["improved_within"])
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(f"overhead per iteration / its training: mean {out['overhead_share_mean']}, max {out['overhead_share_max']} "
              f"(mean {out['overhead_s_mean']}s; target mean <= {TARGETS['overhead_share_mean']})")
        print(f"improvement over the trained baseline code: first at iteration {improved} (target <= "
              f"{TARGETS['improved_within']}); best {out['best_loss']} vs reference {out['reference_loss']} "
              f"(gain {out['best_gain_vs_reference']})")
        print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
