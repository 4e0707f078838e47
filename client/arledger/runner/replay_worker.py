"""The replay worker: one segment (or the final evaluation) in a fresh process.

    python -m arledger.runner.replay_worker REQUEST.json

REQUEST.json (written by arledger.runner.replay; every path local, no network needed):

    {"mode": "segment" | "evaluate", "code_dir": str, "data": {name: path},
     "seed": int, "threads": int,
     "start_checkpoint": path, "steps": int, "out_checkpoint": path,   # mode segment
     "weights": path}                                                  # mode evaluate

Prints one JSON line on stdout: {"ok": true, "state_hash", "step", "startup_ms" (from
this module's import to a built model: not the interpreter + torch import),
"work_ms", "environment"} or {"metrics": {...}} for evaluate; on error
{"ok": false, "error": "..."} and exit status 1. Why a fresh process: the replay must
not inherit any state (RNG, threads, loaded modules) from the verifier, and the
verifier can wrap this argv in a sandbox (bubblewrap) unchanged.
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()


def _run(req: dict) -> dict:
    from pathlib import Path

    from arledger import checkpoint
    from arledger.runner import determinism
    from arledger.runner.experiment import load_experiment
    from arledger.runner.session import Session

    exp = load_experiment(req["code_dir"])
    session = Session(exp, {k: Path(v) for k, v in req["data"].items()}, req["seed"], req["threads"])
    env = determinism.environment(req["threads"])
    startup_ms = int((time.perf_counter() - T0) * 1000)
    t0 = time.perf_counter()
    if req["mode"] == "evaluate":
        checkpoint.load_weights(Path(req["weights"]).read_bytes(), session.model, req["weights"])
        metrics = session.evaluate()
        return {"ok": True, "metrics": metrics, "startup_ms": startup_ms,
                "work_ms": int((time.perf_counter() - t0) * 1000), "environment": env}
    start = Path(req["start_checkpoint"])
    session.restore(start.read_bytes(), str(start))
    session.train_steps(int(req["steps"]))
    data = session.capture()
    checkpoint.atomic_write(Path(req["out_checkpoint"]), data)
    return {"ok": True, "state_hash": checkpoint.state_hash(data), "step": session.step,
            "startup_ms": startup_ms, "work_ms": int((time.perf_counter() - t0) * 1000), "environment": env}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"ok": False, "error": "usage: python -m arledger.runner.replay_worker REQUEST.json"}))
        return 2
    try:
        with open(argv[0]) as fh:
            req = json.load(fh)
        result = _run(req)
    except Exception as exc:  # reported to the parent as data, never as a traceback to parse
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
