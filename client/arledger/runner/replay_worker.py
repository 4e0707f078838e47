"""The replay worker: one segment (or the final evaluation) in a fresh process.

    python -m arledger.runner.replay_worker REQUEST.json

REQUEST.json (written by arledger.runner.replay; every path local, no network needed):

    {"mode": "segment" | "evaluate" | "probe", "code_dir": str, "data": {name: path},
     "seed": int, "threads": int,
     "start_checkpoint": path, "steps": int, "out_checkpoint": path,   # mode segment
     "weights": path,                                                  # mode evaluate
     "checkpoints": [path, ...]}                                       # mode probe

Prints one JSON line on stdout: {"ok": true, "state_hash", "step", "startup_ms" (from
this module's import to a built model: not the interpreter + torch import),
"work_ms", "environment"} or {"metrics": {...}} for evaluate, or {"probes": [{"train",
"val"} per checkpoint] | null} for probe (null: train.py has no optional ``probe``
function; the verifier's suspicion probe, arverifier.sampling); on error
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
    if req["mode"] == "probe":
        probes = _probe(session, exp, [Path(p) for p in req["checkpoints"]])
        return {"ok": True, "probes": probes, "startup_ms": startup_ms,
                "work_ms": int((time.perf_counter() - t0) * 1000), "environment": env}
    start = Path(req["start_checkpoint"])
    session.restore(start.read_bytes(), str(start))
    session.train_steps(int(req["steps"]))
    data = session.capture()
    checkpoint.atomic_write(Path(req["out_checkpoint"]), data)
    return {"ok": True, "state_hash": checkpoint.state_hash(data), "step": session.step,
            "startup_ms": startup_ms, "work_ms": int((time.perf_counter() - t0) * 1000), "environment": env}


def _probe(session, exp, checkpoints) -> list[dict] | None:
    """train.py's optional ``probe(model, data)`` on every checkpoint, in eval mode."""
    import math

    import torch

    fn = getattr(exp.module, "probe", None)
    if not callable(fn):
        return None
    out = []
    for path in checkpoints:
        session.restore(path.read_bytes(), str(path))
        session.model.eval()
        with torch.no_grad():
            got = fn(session.model, session.data)
        if not isinstance(got, dict) or not all(k in got for k in ("train", "val")):
            raise ValueError(f"probe(): must return a dict with 'train' and 'val' (checkpoint {path.name})")
        vals = {k: float(got[k]) for k in ("train", "val")}
        if not all(math.isfinite(v) for v in vals.values()):
            raise ValueError(f"probe(): non-finite loss {vals} (checkpoint {path.name})")
        out.append(vals)
    return out


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
