"""The segment runner: deterministic seeded segments, checkpoints, replay.

Public API (shared by the trainer and the verifier):

- ``run_experiment(RunOptions(...))``: train N steps in segments of K, checkpoint,
  pin, evaluate, write the manifest (arledger.runner.loop).
- ``replay_segment(manifest, i, ...)`` / ``evaluate_final(manifest, ...)``: re-run one
  segment / the final evaluation in a fresh process (arledger.runner.replay);
  ``worker_argv(request_path)`` is the worker's command line, for sandboxes.
- ``load_experiment(dir)``: the experiment interface (arledger.runner.experiment).
"""

from arledger.runner.experiment import Experiment, ExperimentSpec, load_experiment
from arledger.runner.loop import RunOptions, RunResult, run_experiment
from arledger.runner.replay import (
    ReplayError,
    ReplayResult,
    evaluate_final,
    load_manifest_ref,
    replay_segment,
    worker_argv,
)

__all__ = [
    "Experiment", "ExperimentSpec", "load_experiment", "RunOptions", "RunResult", "run_experiment",
    "ReplayError", "ReplayResult", "evaluate_final", "load_manifest_ref", "replay_segment", "worker_argv",
]
