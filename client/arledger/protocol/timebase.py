"""The task's baseline timed on this machine: what a task's time budget is relative to.

A budget in seconds would make a slower verifier accuse a faster trainer. So every party
(trainer, verifier, voter) times the task's own baseline code on its own machine, under
the task's kernel pin, in the same sandbox and through the same requests as the replays
it judges (``baseline.time_base``), and compares ratios (``Budget.time_problem``).

Timed once per task and machine and kept in ``$ARLEDGER_HOME/timebase/`` under a key of
what decides the time: the baseline's code, the training data, the segment length, the
threads, the kernel pin, the sandbox limits, and ``machine()``, so a file carried to
another machine (or the same one after a kernel, Python or torch upgrade) is timed again.
The baseline's code is the task creator's, fetched by CID and run in the sandbox like
any claim's; nothing a claim computes enters this number.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arledger.errors import ArledgerError, TimeBaseUnavailable
from arledger.execution.executors import Executor
from arledger.execution.sandbox import available_backend
from arledger.files import atomic_write
from arledger.protocol import artifacts, baseline
from arledger.runner.budget import TimeBase
from arledger.runner.worker import ClaimCode
from arstore.errors import StoreError

DIRNAME = "timebase"
NOW_SAMPLES = 1  # the baseline timed again around each try of a claim over the line (replay._lowest_time)


def machine(executor: Executor) -> str:
    """What makes this machine's CPU seconds its own: the CPU model, the cores, the kernel,
    Python, torch, the sandbox backend and the kind of ``executor`` (a warm pool's request
    costs less than a fresh interpreter's). A short digest, the same on every run here."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    import torch  # lazy: only where a time base is needed (most commands never time anything)

    parts = [model, str(os.cpu_count()), platform.release(), sys.version.split()[0], torch.__version__,
             str(available_backend()), type(executor).__name__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TimeBaseRequest:
    """The task (``spec``: an ``arledger.taskspec.TaskSpec``), where its baseline code and data
    come from (``store``), where claim code runs (``executor``: the replays' own), and where the
    result is kept (``home``: ``$ARLEDGER_HOME``)."""

    spec: Any
    store: Any
    executor: Executor
    home: Path


def key_of(spec: Any, where: str) -> str:
    """The cache key: what decides a baseline's CPU time on machine ``where``."""
    what = {"code": spec.baseline_code_cid, "data": {k: spec.datasets[k] for k in sorted(spec.train_splits)},
            "segment_steps": spec.segment_steps, "threads": int(spec.environment["threads"]),
            "kernels": spec.cpu_kernels, "limits": spec.limits, "machine": where}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _path(home: Path, spec: Any, where: str) -> Path:
    return Path(home) / DIRNAME / f"{key_of(spec, where)}.json"


def cached(spec: Any, home: Path, executor: Executor) -> TimeBase | None:
    """This machine's time base for ``spec`` if it was timed here before, else None."""
    path = _path(home, spec, machine(executor))
    try:
        return TimeBase.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(spec: Any, base: TimeBase, home: Path, executor: Executor) -> TimeBase:
    """Keep ``base`` (timed on this machine through ``executor``, e.g. by the task's creator)."""
    where = machine(executor)
    kept = TimeBase(base.segment_s, base.start_s, where)
    path = _path(home, spec, where)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(kept.to_dict(), sort_keys=True).encode())
    return kept


def time_now(req: TimeBaseRequest, samples: int = NOW_SAMPLES) -> TimeBase:
    """The baseline timed again now (``samples`` of each request, not kept): a replay over the
    line is held to the faster of the timings on both sides of each new try, so a machine that
    is slower now than when its time base was kept does not turn into an accusation."""
    return _timed(req, samples)


def local_time_base(req: TimeBaseRequest) -> TimeBase:
    """The task's baseline timed on this machine: kept from before, or timed now (a few
    seconds: ``baseline.TIME_SAMPLES`` builds and segments) and kept."""
    found = cached(req.spec, req.home, req.executor)
    if found is not None:
        return found
    return remember(req.spec, _timed(req, baseline.TIME_SAMPLES), req.home, req.executor)


def _timed(req: TimeBaseRequest, samples: int) -> TimeBase:
    with tempfile.TemporaryDirectory(prefix="arledger-timebase-") as tmp:
        try:
            code = req.store.get_dir(req.spec.baseline_code_cid, Path(tmp) / "code")
            train = artifacts.fetch_datasets({k: req.spec.datasets[k] for k in req.spec.train_splits}, req.store,
                                             Path(tmp) / "data")
            claim = ClaimCode(code, train, baseline.SEED, int(req.spec.environment["threads"]))
            base, _answer, work = baseline.time_base(claim, req.spec.segment_steps, req.executor, samples)
        except (StoreError, ArledgerError) as exc:
            raise TimeBaseUnavailable(f"the task's baseline could not be timed on this machine: {exc}") from None
        shutil.rmtree(work, ignore_errors=True)
    return base
