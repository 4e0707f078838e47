"""The protocol's runs: train-pin-evaluate a run, replay its segments, evaluate its weights.

Public API (shared by the trainer and the verifier):

- ``run_experiment(RunOptions(...))``: train N steps in segments of K (the code in the
  sandbox by default), checkpoint, pin, evaluate through the task harness, write the
  manifest (``arledger.protocol.run``);
- ``replay(manifest, ...)`` -> ``Replay``; ``replay_segment(r, i)``, ``evaluate_final(r)``,
  ``probe_checkpoints(r)``: requests against a claim (``arledger.protocol.replay``), run by
  an ``arledger.execution`` executor;
- ``artifacts``: the run directory's layout and the store (pin, fetch by CID).
"""

from arledger.protocol.replay import (
                                      EvalResult,
                                      evaluate_final,
                                      load_manifest_ref,
                                      probe_checkpoints,
                                      Replay,
                                      replay,
                                      replay_segment,
                                      ReplayError,
                                      ReplayOptions,
                                      ReplayResult,
)
from arledger.protocol.run import run_experiment, RunOptions, RunResult

__all__ = ["EvalResult", "Replay", "ReplayError", "ReplayOptions", "ReplayResult", "RunOptions", "RunResult",
           "evaluate_final", "load_manifest_ref", "probe_checkpoints", "replay", "replay_segment", "run_experiment"]
