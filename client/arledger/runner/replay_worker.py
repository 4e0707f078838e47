"""The worker: one request (a segment, a prediction, a harness step) in a fresh process.

    python -m arledger.runner.replay_worker request.json     # run in the request dir

``request.json`` (written by ``arledger.runner.execution``; every path is relative to
the request dir, which is the worker's working directory):

    {"mode": "segment", "code": "code", "data": {split: path}, "seed": int, "threads": int,
     "start": "start.safetensors", "steps": int, "out": "out.safetensors", "count_flops": bool}
        -> {"flops": FLOPs of every step (arledger.runner.budget) when count_flops}
    {"mode": "build", "code", "data", "seed", "threads", "out": "start.safetensors"}
        -> checkpoint 0 as build() makes it from the seed, {"flops": start-up FLOPs}
    {"mode": "predict", "code", "data", "seed", "threads", "inputs": "inputs.safetensors",
     "models": ["m0.safetensors", ...], "kind": "checkpoint" | "weights"}
        -> writes outputs-<j>.safetensors: {input name: model(input)} per model j
    {"mode": "harness", "harness": "harness", "data": {split: path}, "threads": int,
     "op": "inputs", "check_seed": hex | null, "probe": bool}
        -> writes inputs.safetensors and plan.json
    {"mode": "harness", ..., "op": "score", "outputs": {"eval": path, "perturbed": path} | null,
     "plan": "plan.json" | null, "probe_outputs": [path, ...]}

Claim code (``segment``, ``predict``) gets the training splits only; the harness
(``harness``) runs in a process of its own with every split. Prints one JSON line:
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` (exit status 1). The answer
of a claim-code mode is claim code's word: the caller checks the files it names.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()


def run_request(req: dict, base: Path) -> dict:
    """Serve one request whose relative paths are under ``base``."""
    mode = req.get("mode")
    if mode == "harness":
        return _harness(req, base)
    if mode not in ("segment", "predict", "build"):
        raise ValueError(f"mode: {mode!r} is not segment, predict, build or harness")
    from arledger import checkpoint
    from arledger.runner.experiment import load_experiment
    from arledger.runner.session import Session

    exp = load_experiment(base / req["code"])
    session = Session(exp, {k: base / v for k, v in req["data"].items()}, req["seed"], req["threads"],
                      count_startup=mode == "build")
    startup_ms = int((time.perf_counter() - T0) * 1000)
    t0 = time.perf_counter()
    if mode == "build":  # checkpoint 0 as this code builds it from the seed, and what that cost
        data = session.capture()
        checkpoint.atomic_write(base / req["out"], data)
        return {"ok": True, "flops": session.startup_flops, "startup_ms": startup_ms}
    if mode == "segment":
        start = base / req["start"]
        session.restore(start.read_bytes(), req["start"])
        steps = int(req["steps"])
        session.train_steps(steps, count=steps if req.get("count_flops") else 0)
        data = session.capture()
        checkpoint.atomic_write(base / req["out"], data)
        return {"ok": True, "state_hash": checkpoint.state_hash(data), "step": session.step,
                "flops": session.counted_flops if req.get("count_flops") else None,
                "startup_ms": startup_ms, "work_ms": int((time.perf_counter() - t0) * 1000)}
    _predict(session, req, base)
    return {"ok": True, "models": len(req["models"]), "startup_ms": startup_ms,
            "work_ms": int((time.perf_counter() - t0) * 1000)}


def _predict(session, req: dict, base: Path) -> None:
    from safetensors.torch import load_file, save_file

    from arledger import checkpoint
    from arledger.runner.predict import predict

    inputs = load_file(str(base / req["inputs"]))
    for j, name in enumerate(req["models"]):
        blob = (base / name).read_bytes()
        if req["kind"] == "weights":
            checkpoint.load_weights(blob, session.model, name)
        else:
            session.restore(blob, name)
        outs = {key: predict(session.model, x, session.seed) for key, x in sorted(inputs.items())}
        save_file(outs, str(base / f"outputs-{j}.safetensors"))


def _harness(req: dict, base: Path) -> dict:
    from safetensors.torch import load_file, save_file

    from arledger import harness as hs
    from arledger.errors import HarnessError
    from arledger.runner import determinism

    determinism.configure(int(req["threads"]))
    h = hs.load_harness(base / req["harness"])
    data = h.module.load({k: base / v for k, v in req["data"].items()})
    if req["op"] == "inputs":
        tensors, plan = hs.make_inputs(h, data, seed=hs.check_seed(req.get("check_seed")), probe=bool(req.get("probe")))
        save_file(tensors, str(base / "inputs.safetensors"))
        (base / "plan.json").write_text(json.dumps(plan, sort_keys=True))
        return {"ok": True, "inputs": sorted(tensors)}
    if req["op"] != "score":
        raise ValueError(f"op: {req['op']!r} is not inputs or score")
    result: dict = {"ok": True, "invalid": None, "metrics": None, "causality": None, "probes": None,
                    "probe_invalid": None}
    # The claim's outputs may be unusable: a fact to report (for each part apart), not a crash.
    if req.get("outputs"):  # {name: file}: outputs[name] is the file's "eval" tensor
        try:
            plan = json.loads((base / req["plan"]).read_text()) if req.get("plan") else {"cuts": None}
            outs = {name: _load_outputs(load_file, base / f).get("eval") for name, f in req["outputs"].items()}
            result.update(hs.score(h, data, outs, plan.get("cuts")))
        except HarnessError as exc:
            result["invalid"] = str(exc)
    if req.get("probe_outputs"):
        try:
            result["probes"] = [hs.probe_losses(h, data, _load_outputs(load_file, base / p))
                                for p in req["probe_outputs"]]
        except HarnessError as exc:
            result["probe_invalid"] = str(exc)
    return result


def _load_outputs(load_file, path: Path) -> dict:
    from arledger.errors import HarnessError

    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - the file is claim code's output
        raise HarnessError(f"outputs: {path.name} is not a readable safetensors file ({type(exc).__name__})") from None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"ok": False, "error": "usage: python -m arledger.runner.replay_worker request.json"}))
        return 2
    try:
        path = Path(argv[0]).resolve()
        req = json.loads(path.read_text())
        result = run_request(req, path.parent)
    except Exception as exc:  # reported to the parent as data, never as a traceback to parse
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
