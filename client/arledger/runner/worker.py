"""The worker: one request (a segment, a prediction, a harness step) in a fresh process.

    python -m arledger.runner.worker request.json     # run in the request dir

``request.json`` (written by ``arledger.execution.executors``; every path is relative to
the request dir, which is the worker's working directory):

    {"mode": "segment", "code": "code", "data": {split: path}, "seed": int, "threads": int,
     "start": "start.safetensors", "steps": int, "out": "out.safetensors", "count": int}
        -> {"flops": FLOPs of the first ``count`` steps (arledger.runner.budget), "counted_steps",
            "step_flops_max", "losses": [one per step], "state_hash", "step"}
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

The trainer trains through ``build`` and ``segment`` requests too (``arledger.protocol.run``),
so a claim's code runs the same way on the trainer's machine as on a verifier's.
``warm()`` loads what a request needs without running any; the zygote
(``arledger.execution.zygote``) calls it once before it forks.

Claim code (``build``, ``segment``, ``predict``) gets the training splits only; the harness
(``harness``) runs in a process of its own with every split. Prints one JSON line:
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` (exit status 1). The answer
of a claim-code mode is claim code's word: the caller checks the files it names.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from arledger import checkpoint, harness as hs, scoring
from arledger.errors import HarnessError
from arledger.execution.executors import WorkRequest
from arledger.execution.limits import Limits
from arledger.runner import determinism
from arledger.runner.experiment import load_experiment
from arledger.runner.predict import predict
from arledger.runner.session import Session

T0 = time.perf_counter()  # start-up is measured from here (a zygote's child resets it)


@dataclass(frozen=True)
class ClaimCode:
    """What a claim-code request (``build``, ``segment``, ``predict``) runs: the code and the
    training splits, under fixed relative names (nothing else of the caller's), with a seed
    and a thread count. The one builder of those requests, for the trainer, the agent's
    checks, a task's baseline and the verifier alike."""

    code: Path
    train: dict[str, Path]
    seed: int
    threads: int

    def request(self, label: str, mode: str, files: dict[str, Path] | None = None, limits: Limits | None = None,
                **extra) -> WorkRequest:
        """``files``: more inputs (relative name -> local file); ``limits``: the executor's when None."""
        body = {"mode": mode, "code": "code", "data": {k: f"data/{k}" for k in sorted(self.train)},
                "seed": int(self.seed), "threads": int(self.threads), **extra}
        inputs = {"code": Path(self.code), **{f"data/{k}": Path(p) for k, p in self.train.items()}, **(files or {})}
        return WorkRequest(label, body, inputs, limits)

    def build(self, label: str, limits: Limits | None = None) -> WorkRequest:
        """Checkpoint 0 from the seed, written to ``start.safetensors``."""
        return self.request(label, "build", limits=limits, out="start.safetensors")

    def segment(self, label: str, start: Path, steps: int, count: int, limits: Limits | None = None) -> WorkRequest:
        """``steps`` steps from checkpoint ``start``, the first ``count`` counted, written to ``out.safetensors``."""
        return self.request(label, "segment", {"start.safetensors": start}, limits, start="start.safetensors",
                            steps=int(steps), out="out.safetensors", count=int(count))


def run_request(req: dict, base: Path) -> dict:
    """Serve one request whose relative paths are under ``base``."""
    mode = req.get("mode")
    if mode == "harness":
        return _harness(req, base)
    if mode not in ("segment", "predict", "build"):
        raise ValueError(f"mode: {mode!r} is not segment, predict, build or harness")
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
        count = min(steps, int(req.get("count") or 0))
        losses: list[float] = []
        session.train_steps(steps, count=count, on_step=lambda _step, loss: losses.append(float(loss)))
        data = session.capture()
        checkpoint.atomic_write(base / req["out"], data)
        return {"ok": True, "state_hash": checkpoint.state_hash(data), "step": session.step,
                "flops": session.counted_flops if count else None, "counted_steps": session.counted_steps,
                "step_flops_max": session.max_step_flops, "losses": losses,
                "startup_ms": startup_ms, "work_ms": int((time.perf_counter() - t0) * 1000)}
    _predict(session, req, base)
    return {"ok": True, "models": len(req["models"]), "startup_ms": startup_ms,
            "work_ms": int((time.perf_counter() - t0) * 1000)}


def _predict(session, req: dict, base: Path) -> None:
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
    determinism.configure(int(req["threads"]))
    h = hs.load_harness(base / req["harness"])
    data = h.module.load({k: base / v for k, v in req["data"].items()})
    if req["op"] == "inputs":
        tensors, plan = scoring.make_inputs(h, data, seed=scoring.check_seed(req.get("check_seed")),
                                            probe=bool(req.get("probe")))
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
            outs = {name: _load_outputs(base / f).get("eval") for name, f in req["outputs"].items()}
            result.update(scoring.score(h, data, outs, plan.get("cuts")))
        except HarnessError as exc:
            result["invalid"] = str(exc)
    if req.get("probe_outputs"):
        try:
            result["probes"] = [scoring.probe_losses(h, data, _load_outputs(base / p))
                                for p in req["probe_outputs"]]
        except HarnessError as exc:
            result["probe_invalid"] = str(exc)
    return result


def _load_outputs(path: Path) -> dict:
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - the file is claim code's output
        raise HarnessError(f"outputs: {path.name} is not a readable safetensors file ({type(exc).__name__})") from None


def warm() -> int:
    """Touch what a request needs, without parallel kernels; returns the ms spent.

    For a zygote before it forks: one thread (no OpenMP / intra-op pool may exist before
    fork), and each optimizer built once (the constructors import torch._dynamo, 1.3 s)."""
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    F = torch.nn.functional
    emb = torch.nn.Embedding(4, 4)
    lin = torch.nn.Linear(4, 4)
    for opt_cls in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        opt = opt_cls([*emb.parameters(), *lin.parameters()], lr=0.1)
        x = F.layer_norm(emb(torch.tensor([[0, 1], [2, 3]])), (4,))
        x = F.dropout(F.gelu(lin(x)), 0.1) + torch.softmax(x @ x.transpose(-1, -2), -1) @ x
        loss = F.cross_entropy(x.reshape(-1, 4), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return int((time.perf_counter() - t0) * 1000)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"ok": False, "error": "usage: python -m arledger.runner.worker request.json"}))
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
