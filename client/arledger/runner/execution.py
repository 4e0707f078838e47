"""The execution layer: one request type, one executor interface, three executors.

Every run of claim code (a replayed segment, a prediction on held-out inputs) and of
task-harness code (making evaluation inputs, scoring outputs) is a ``WorkRequest``
handed to an ``Executor``; the trainer and the verifier use the same requests and
differ only in the executor:

- ``InProcessExecutor``: the worker's code in this process (the trainer's harness
  steps: the sponsor's code, which the trainer runs anyway);
- ``SubprocessExecutor``: a fresh ``python -m arledger.runner.replay_worker`` (the
  trainer's own replays and predictions);
- ``PoolExecutor``: a child forked by a warm zygote (``replay_pool``), plain or inside
  the verifier's sandbox (``arverifier.sandbox``), which also has a one-process-per-run
  ``SandboxExecutor``.

Why a request directory with relative paths: the worker runs with that directory as
its working directory, so what claim code can observe of its inputs is the same on
every machine: ``code/``, ``data/train``, ``start.safetensors``, in a directory whose
name (``label``) comes from the request, never from the verifier or a random source.
Executors that run claim code under a sandbox copy the inputs in (claim code may
write to its request dir; a copy keeps the verifier's own files out of reach).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from arledger.errors import ReplayError
from arledger.runner.limits import Limits, classify

WORKER_MODULE = "arledger.runner.replay_worker"
REQUEST_FILE = "request.json"
LOG_FILE = "worker.log"
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class WorkRequest:
    """One run of the worker: ``body`` becomes ``request.json`` (paths relative to the dir).

    ``inputs`` maps a relative name in the request dir to a local file or directory
    that is placed there before the run; ``limits`` bound the run where the executor
    can enforce them (the pool and the sandbox; the plain subprocess keeps only the
    wall clock).
    """

    label: str
    body: Mapping[str, Any]
    inputs: Mapping[str, Path] = field(default_factory=dict)
    limits: Limits | None = None

    def __post_init__(self):
        if not _LABEL.match(self.label):
            raise ValueError(f"label: {self.label!r} is not a short lowercase name")
        for name in self.inputs:
            if name.startswith("/") or ".." in Path(name).parts:
                raise ValueError(f"inputs: {name!r} must be a relative path inside the request dir")


@dataclass(frozen=True)
class Done:
    """A finished run: the worker's answer (claim code's word: check it), its directory, and
    ``cpu_s``: the CPU time of the whole process tree as the kernel accounted it to the parent
    (never claim code's word; None where the executor cannot measure it)."""

    answer: dict
    directory: Path
    cpu_s: float | None = None

    def file(self, name: str) -> Path:
        return self.directory / name


class Executor:
    """Runs ``WorkRequest``s: ``with executor.run(req) as done: ...`` (the dir lives until the block ends)."""

    kind = "abstract"
    copy_inputs = False  # True where claim code runs sandboxed: never hand it the caller's own files

    def root(self) -> Path:  # pragma: no cover - interface
        raise NotImplementedError

    def _execute(self, directory: Path, req: WorkRequest) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    @contextlib.contextmanager
    def run(self, req: WorkRequest) -> Iterator[Done]:
        directory = self._fresh_dir(req.label)
        try:
            stage(req, directory, copy=self.copy_inputs)
            cpu0 = self._cpu_clock()
            answer = self._execute(directory, req)
            cpu1 = self._cpu_clock()
            yield Done(answer, directory, None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 3))
        finally:
            self._discard(directory)

    def _cpu_clock(self) -> float | None:
        """CPU seconds of this executor's reaped workers so far (a parent's view, rusage)."""
        return _children_cpu()

    def _fresh_dir(self, label: str) -> Path:
        root = self.root()
        root.mkdir(parents=True, exist_ok=True)
        d = root / label
        if d.exists() or d.is_symlink():
            _remove(d)
        d.mkdir()
        os.chmod(d, 0o777)  # a sandboxed uid writes its outputs here
        return d

    def _discard(self, directory: Path) -> None:
        _remove(directory)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stage(req: WorkRequest, directory: Path, *, copy: bool) -> None:
    """Place the inputs and ``request.json`` in ``directory``."""
    for name, src in sorted(req.inputs.items()):
        dest = directory / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = Path(src).resolve()
        if not src.exists():
            raise ReplayError(f"input {name}: {src} does not exist")
        if not copy:
            dest.symlink_to(src, target_is_directory=src.is_dir())
        elif src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copyfile(src, dest)
    (directory / REQUEST_FILE).write_text(json.dumps(dict(req.body), sort_keys=True))


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def worker_argv(python: str | None = None) -> list[str]:
    """The worker's command line; it runs in its request dir and reads ``request.json``."""
    return [python or sys.executable, "-m", WORKER_MODULE, REQUEST_FILE]


def parse_answer(stdout: str, returncode: int | None, log: str, violation: str | None = None) -> dict:
    """The worker's answer from its stdout (the last JSON line), or a ReplayError."""
    violation = violation or (classify(returncode, None, log) if returncode else None)
    if violation:
        raise ReplayError(f"worker broke the {violation} limit (exit {returncode}): {_tail(log)}", violation)
    lines = [ln for ln in (stdout or "").splitlines() if ln.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise ReplayError(f"worker: exit {returncode} without an answer, {_tail(log)}") from None
    if isinstance(answer, dict) and not answer.get("ok"):  # its own error may name a broken limit
        error = str(answer.get("error", "failed"))[:500]
        broke = classify(returncode, None, error + "\n" + log)
        if broke:
            raise ReplayError(f"worker broke the {broke} limit (exit {returncode}): {error}", broke)
    return checked_answer(answer)


def checked_answer(answer: Any) -> dict:
    if not isinstance(answer, dict):
        raise ReplayError(f"worker: answer is a {type(answer).__name__}, not an object")
    if not answer.get("ok"):
        raise ReplayError(f"worker: {str(answer.get('error', 'failed'))[:500]}")
    return answer


def _tail(text: str) -> str:
    return ((text or "").strip().splitlines() or ["no output"])[-1][:300]


class InProcessExecutor(Executor):
    """The worker's code in this process: for code the caller trusts (a harness it runs anyway)."""

    kind = "in-process"

    def _cpu_clock(self) -> float:  # the code runs here: this process's own CPU time
        return time.process_time()

    def __init__(self, root: Path | None = None):
        self._root = Path(root) if root else Path(tempfile.mkdtemp(prefix="arledger-inproc-"))

    def root(self) -> Path:
        return self._root

    def _execute(self, directory: Path, req: WorkRequest) -> dict:
        from arledger.runner import replay_worker

        try:
            return checked_answer(replay_worker.run_request(dict(req.body), directory))
        except ReplayError:
            raise
        except Exception as exc:  # noqa: BLE001 - the same answer a worker process would give
            raise ReplayError(f"worker: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


class SubprocessExecutor(Executor):
    """A fresh worker process per request (~2.7 s of interpreter + torch start-up each)."""

    kind = "subprocess"

    def __init__(self, root: Path | None = None, python: str | None = None, timeout: float | None = None):
        self._root = Path(root) if root else None
        self.python = python
        self.timeout = timeout

    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="arledger-work-"))
        return self._root

    def _execute(self, directory: Path, req: WorkRequest) -> dict:
        timeout = self.timeout or (req.limits.wall_seconds if req.limits else None)
        with open(directory / LOG_FILE, "wb") as log:
            try:
                proc = subprocess.run(worker_argv(self.python), cwd=directory, stdout=subprocess.PIPE, stderr=log,
                                      stdin=subprocess.DEVNULL, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise ReplayError(f"worker: no answer within {timeout}s (wall-time)", "wall-time") from None
        return parse_answer(proc.stdout.decode(errors="replace"), proc.returncode, _read(directory / LOG_FILE))

    def close(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


class PoolExecutor(Executor):
    """Children of a warm zygote (``arledger.runner.replay_pool.ReplayPool``), one per request.

    The pool's scratch root holds exactly one request dir at a time: before and after
    each request everything else under it is removed, so nothing one run of claim
    code leaves there reaches the next.
    """

    kind = "pool"

    def __init__(self, pool: Any, copy_inputs: bool | None = None):
        self.pool = pool
        self.copy_inputs = pool.sandboxed if copy_inputs is None else copy_inputs

    @property
    def startup_s(self) -> float | None:
        return self.pool.startup_s

    def root(self) -> Path:
        return self.pool.scratch

    def _fresh_dir(self, label: str) -> Path:
        self.pool.wipe()
        return super()._fresh_dir(label)

    def _discard(self, directory: Path) -> None:
        self.pool.wipe()

    def _cpu_clock(self) -> float | None:
        return self.pool.cpu_s  # the zygote's account of its reaped children

    def _execute(self, directory: Path, req: WorkRequest) -> dict:
        return self.pool.run(directory, req.limits)

    def close(self) -> None:
        self.pool.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
