"""Requests and executors: one request type, one executor interface, four executors.

Every run of claim code (a replayed segment, a prediction on held-out inputs) and of
task-harness code (making evaluation inputs, scoring outputs) is a ``WorkRequest``
handed to an ``Executor``; the trainer and the verifier use the same requests and
differ only in the executor:

- ``InProcessExecutor``: the worker's code in this process (the trainer's harness
  steps: the sponsor's code, which the trainer runs anyway);
- ``SubprocessExecutor``: a fresh ``python -m arledger.runner.worker`` (code the
  caller chose to run unsandboxed: its own);
- ``PoolExecutor``: a child forked by a warm zygote (``arledger.execution.pool``), plain
  or inside the sandbox (``arledger.execution.sandbox``), which also has a
  one-process-per-run ``SandboxExecutor``.

The worker that serves a request is the runner's (``WORKER_MODULE``): this layer names it
and starts it as a program, and never imports it, so it stays below the runner and
loads no torch. The in-process executor is handed the worker's ``run_request``.

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
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from arledger.errors import ReplayError
from arledger.execution.limits import children_cpu, classify, Limits

WORKER_MODULE = "arledger.runner.worker"  # the program every executor runs (named, never imported)
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
    dir_ino: int | None = None  # the request dir's inode when it was made: the code may have swapped it

    def file(self, name: str) -> Path:
        """A file the run wrote, checked before the caller touches it (the code is dead by then):
        in the request dir the executor made (not one the code renamed into its place), a plain
        file of its own: never a symlink (the code could point one at the caller's keystore,
        which the caller would then read, pin and publish), never a second name of another
        file (a hard link) and nothing else (a FIFO would block the reader). ReplayError else."""
        path = self.directory / name
        try:
            here = os.lstat(self.directory)
            st = os.lstat(path)
        except OSError:
            raise ReplayError(f"worker: {name} missing after the run") from None
        if not stat.S_ISDIR(here.st_mode) or (self.dir_ino is not None and here.st_ino != self.dir_ino):
            raise ReplayError("worker: its request dir was replaced during the run: refused")
        if len(Path(name).parts) != 1 or not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise ReplayError(f"worker: {name} is not a plain file of its own (a link or a device): refused")
        return path

    def read(self, name: str) -> bytes:
        """The bytes of ``file(name)``."""
        path = self.file(name)
        try:
            return path.read_bytes()
        except OSError as exc:  # the code may have made it unreadable
            raise ReplayError(f"worker: {name} unreadable after the run ({exc.strerror})") from None


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
            ino = os.lstat(directory).st_ino
            answer = self._execute(directory, req)
            cpu1 = self._cpu_clock()
            yield Done(answer, directory, None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 3), ino)
        finally:
            self._discard(directory)

    def _cpu_clock(self) -> float | None:
        """CPU seconds of this executor's reaped workers so far (a parent's view, rusage)."""
        return children_cpu()

    def _fresh_dir(self, label: str) -> Path:
        root = self.root()
        root.mkdir(parents=True, exist_ok=True)
        d = root / label
        remove_tree(d)
        d.mkdir()
        os.chmod(d, 0o777)  # a sandboxed uid writes its outputs here
        return d

    def _discard(self, directory: Path) -> None:
        remove_tree(directory)

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


def remove_tree(path: Path) -> None:
    """Remove what a run left at ``path``, whatever modes its code set on it (it owns them: the
    sandbox's user is the caller's on the host), or raise ReplayError: what is left behind
    could reach the next request."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)  # a directory the code made unreadable: its owner opens it again
    for top, dirs, _files in os.walk(path, onerror=lambda e: None):  # top-down: children opened before visited
        for d in dirs:
            if not os.path.islink(os.path.join(top, d)):
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(top, d), 0o700)
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() or path.is_symlink():
        raise ReplayError(f"{path}: what a run left there cannot be removed")


def worker_argv(python: str | None = None) -> list[str]:
    """The worker's command line; it runs in its request dir and reads ``request.json``."""
    return [python or sys.executable, "-m", WORKER_MODULE, REQUEST_FILE]


def parse_answer(stdout: str, returncode: int | None, log: str, violation: str | None = None) -> dict:
    """The worker's answer from its stdout (the last JSON line), or a ReplayError."""
    violation = violation or (classify(returncode, None, log) if returncode else None)
    if violation:
        raise limit_broken(violation, f"exit {returncode}", _tail(log))
    lines = [ln for ln in (stdout or "").splitlines() if ln.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise ReplayError(f"worker: exit {returncode} without an answer, {_tail(log)}") from None
    if isinstance(answer, dict) and not answer.get("ok"):  # its own error may name a broken limit
        error = str(answer.get("error", "failed"))[:500]
        broke = classify(returncode, None, error + "\n" + log)
        if broke:
            raise limit_broken(broke, f"exit {returncode}", error)
    return checked_answer(answer)


def limit_broken(violation: str, how: str, detail: str) -> ReplayError:
    """The one error for a run that broke a limit, whichever executor saw it: the violation
    (``limits.VIOLATIONS``), how the worker ended (``exit 1``, ``SIGXCPU``) and its last words."""
    return ReplayError(f"worker broke the {violation} limit ({how}): {detail}", violation)


MAX_ANSWER_INT = 1 << 63  # no count or time a worker reports is larger; a larger one is not a number to use


def checked_answer(answer: Any) -> dict:
    """The worker's answer (claim code's word: the code shares the worker's process and can print
    its own line), an object saying ok, its numbers made safe to compute with: an integer beyond
    ``MAX_ANSWER_INT`` becomes None (``float()`` of a 400-digit one would raise), so a caller
    checks types and bounds, never catches arithmetic errors."""
    if not isinstance(answer, dict):
        raise ReplayError(f"worker: answer is a {type(answer).__name__}, not an object")
    if not answer.get("ok"):
        raise ReplayError(f"worker: {str(answer.get('error', 'failed'))[:500]}")
    return {k: _bounded(v) for k, v in answer.items()}


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_ANSWER_INT:
        return None
    if isinstance(value, list):
        return [_bounded(v) for v in value]
    return value


def _tail(text: str) -> str:
    return ((text or "").strip().splitlines() or ["no output"])[-1][:300]


Serve = Callable[[dict, Path], dict]  # the worker's run_request(body, request dir) -> answer


class InProcessExecutor(Executor):
    """The worker's code in this process: only for code the caller wrote or chose to trust.

    ``serve`` is the worker's ``run_request`` (``arledger.runner.worker``), handed in by
    the layer that owns it."""

    kind = "in-process"

    def _cpu_clock(self) -> float:  # the code runs here: this process's own CPU time
        return time.process_time()

    def __init__(self, serve: Serve, root: Path | None = None):
        self.serve = serve
        self._root = Path(root) if root else Path(tempfile.mkdtemp(prefix="arledger-inproc-"))

    def root(self) -> Path:
        return self._root

    def _execute(self, directory: Path, req: WorkRequest) -> dict:
        try:
            return checked_answer(self.serve(dict(req.body), directory))
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
    """Children of a warm zygote (``arledger.execution.pool.ReplayPool``), one per request.

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
