"""The segment runner: deterministic seeded segments, checkpoints, replay, evaluation.

Public API (shared by the trainer and the verifier):

- ``run_experiment(RunOptions(...))``: train N steps in segments of K, checkpoint,
  pin, evaluate through the task harness, write the manifest (arledger.runner.loop).
- ``replay(manifest, ...)`` -> ``Replay``; ``replay_segment(r, i)``, ``evaluate_final(r)``,
  ``probe_checkpoints(r)``: requests against a claim (arledger.runner.replay), run by an
  ``Executor`` (arledger.runner.execution).
- ``load_experiment(dir)``: the experiment interface (arledger.runner.experiment).
"""

from arledger.runner.execution import (Executor, InProcessExecutor, PoolExecutor, SubprocessExecutor,
                                       WorkRequest, worker_argv)
from arledger.runner.experiment import Experiment, ExperimentSpec, load_experiment
from arledger.runner.limits import Limits
from arledger.runner.loop import RunOptions, RunResult, run_experiment
from arledger.runner.replay import (
    EvalResult,
    Replay,
    ReplayError,
    ReplayResult,
    evaluate_final,
    load_manifest_ref,
    probe_checkpoints,
    replay,
    replay_segment,
)

__all__ = [
    "Executor", "InProcessExecutor", "PoolExecutor", "SubprocessExecutor", "WorkRequest", "worker_argv",
    "Experiment", "ExperimentSpec", "load_experiment", "Limits", "RunOptions", "RunResult", "run_experiment",
    "EvalResult", "Replay", "ReplayError", "ReplayResult", "evaluate_final", "load_manifest_ref",
    "probe_checkpoints", "replay", "replay_segment",
]
