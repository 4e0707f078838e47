"""A pool of one warm replay zygote: the replay's start-up paid once, not per segment.

    with ReplayPool() as pool:                       # ~3 s once: python + torch + dynamo
        replay_segment(m, 3, run_dir=run, pool=pool)  # a forked child per replay
        evaluate_final(m, run_dir=run, pool=pool)

Each replay still runs in a process of its own that has never seen another request
(see ``arledger.runner.replay_zygote``); the pool writes ``request.json`` into a fresh
``request_dir()`` under its scratch root, sends one JSON line to the zygote and reads
one back. The verifier starts the zygote inside its sandbox through ``launch``
(``arverifier.sandbox.Sandbox.replay_pool``); then only paths under ``roots`` are
reachable by the child, and a request whose input lies elsewhere is refused here.

A crash of the zygote is reported as a ``ReplayError`` for the request it was serving
(or noticed before the next one) and the zygote is started again, once per crash; a
zygote that does not come back breaks the pool for good (every later call raises).
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from arledger.runner.replay import ReplayError

Launch = Callable[[list[str], Path], subprocess.Popen]
ZYGOTE_MODULE = "arledger.runner.replay_zygote"
LIMIT_KEYS = ("cpu_seconds", "wall_seconds", "memory_bytes", "file_size_bytes", "max_processes")
ZYGOTE_LOG = "zygote.log"


def zygote_argv(python: str | None = None, guard: str | None = None) -> list[str]:
    """The command line of the zygote (wrap it in a sandbox as needed)."""
    return [python or sys.executable, "-m", ZYGOTE_MODULE, *(["--guard", guard] if guard else [])]


def limits_dict(limits: Any) -> dict[str, float] | None:
    """Per-child limits from a mapping or any object with the ``LIMIT_KEYS`` attributes."""
    if limits is None:
        return None
    get = limits.get if isinstance(limits, Mapping) else (lambda k: getattr(limits, k, None))
    return {k: get(k) for k in LIMIT_KEYS if get(k) is not None}


class ReplayPool:
    """One zygote and the scratch root its children work in; a context manager."""

    def __init__(self, scratch: Path | str | None = None, *, limits: Any = None, launch: Launch | None = None,
                 guard: str | None = None, roots: Sequence[Path] | None = None, python: str | None = None,
                 ready_timeout: float = 300.0, answer_margin: float = 30.0):
        self._own_scratch = scratch is None
        self.scratch = Path(tempfile.mkdtemp(prefix="arledger-pool-")) if scratch is None else Path(scratch)
        self.limits = limits_dict(limits)
        self.launch = launch or _plain_launch
        self.argv = zygote_argv(python, guard)
        self.roots = None if roots is None else [Path(r).resolve() for r in [self.scratch, *roots]]
        self.ready_timeout, self.answer_margin = ready_timeout, answer_margin
        self.startup_s: float | None = None  # of the first zygote: what a verifier pays once
        self.restarts = 0
        self.served = 0
        self._proc: subprocess.Popen | None = None
        self._buf = b""
        self._eof = False
        self._broken: str | None = None
        self._ids = itertools.count(1)

    # -- life cycle --------------------------------------------------------------------

    def __enter__(self) -> "ReplayPool":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> float:
        """Start the zygote and wait until it is warm; returns the seconds that took."""
        if self._proc is not None and self._proc.poll() is None:
            return 0.0
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o777)  # a sandboxed uid must create its request's files
        t0 = time.perf_counter()
        self._buf, self._eof = b"", False
        self._proc = self.launch(list(self.argv), self.scratch)
        line = self._read_line(time.monotonic() + self.ready_timeout)
        if line is None or not line.get("ready"):
            self._stop()
            raise ReplayError(f"replay zygote: did not start ({self._log_tail()})")
        took = time.perf_counter() - t0
        if self.startup_s is None:
            self.startup_s = took
        return took

    def close(self) -> None:
        self._stop()
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                stream and stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        closer = getattr(proc, "close", None)  # a sandboxed Popen also frees its cgroup
        if callable(closer):
            closer()

    def _restart(self, why: str) -> str:
        """Restart after a crash; returns the text to report (the pool breaks if it fails)."""
        self._stop()
        self.restarts += 1
        try:
            self.start()
        except ReplayError as exc:
            self._broken = f"{why}; restart failed: {exc}"
            return self._broken
        return f"{why}; zygote restarted"

    # -- requests ------------------------------------------------------------------------

    def request_dir(self) -> Path:
        """A fresh directory under the scratch root for one request (writable by the child)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        d = Path(tempfile.mkdtemp(prefix="req-", dir=self.scratch))
        os.chmod(d, 0o777)
        return d

    def check_reachable(self, paths: Sequence[Path]) -> None:
        """Refuse a request whose input the sandboxed zygote cannot see."""
        if self.roots is None:
            return
        for p in paths:
            real = Path(p).resolve()
            if not any(real == r or r in real.parents for r in self.roots):
                raise ReplayError(f"replay pool: input {p} is outside the pool's readable roots "
                                  f"({', '.join(map(str, self.roots))})")

    def run(self, request_path: Path, workdir: Path, readable: Sequence[Path] = (),
            timeout: float | None = None) -> dict:
        """Have a forked child run one request; returns the worker's answer or raises ReplayError."""
        if self._broken:
            raise ReplayError(f"replay zygote: pool unusable: {self._broken}")
        self.check_reachable([request_path, workdir, *readable])
        if self._proc is None:
            self.start()
        elif self._proc.poll() is not None:
            note = self._restart(f"replay zygote: had died ({_how(self._proc)})")
            if self._broken:
                raise ReplayError(note)
        msg = {"id": next(self._ids), "request": str(request_path), "workdir": str(workdir), "limits": self.limits}
        wall = (self.limits or {}).get("wall_seconds")
        budget = timeout if timeout is not None else (float(wall) + self.answer_margin if wall else None)
        deadline = None if budget is None else time.monotonic() + budget
        try:
            self._proc.stdin.write((json.dumps(msg) + "\n").encode())
            self._proc.stdin.flush()
            reply = self._read_line(deadline)
        except OSError:
            reply = None
        if reply is None:
            proc = self._proc
            if self._eof:  # stdout closed: it is exiting; let its status arrive
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:  # alive but silent past the deadline
                proc.kill()
                proc.wait()
                why = f"replay zygote: no answer within {budget}s (timed out)"
            else:
                why = f"replay zygote: crashed ({_how(proc)}) while serving the request"
            raise ReplayError(self._restart(why))
        self.served += 1
        return _answer(reply)

    # -- plumbing ------------------------------------------------------------------------

    def _read_line(self, deadline: float | None) -> dict | None:
        """The zygote's next JSON line, None on EOF or deadline."""
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            data = os.read(fd, 65536)
            if not data:
                self._eof = True
                return None
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return {"detail": f"unreadable zygote line {line[:200]!r}"}

    def _log_tail(self) -> str:
        try:
            lines = (self.scratch / ZYGOTE_LOG).read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return (lines or ["no output"])[-1][:300]


def _how(proc: subprocess.Popen) -> str:
    rc = proc.poll()
    return f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit {rc}"


def _answer(reply: dict) -> dict:
    """The worker's answer from a zygote reply, or a ReplayError naming the broken limit."""
    if reply.get("violation"):
        raise ReplayError(f"replay worker: broke the {reply['violation']} limit "
                          f"({reply.get('signal') or 'exit ' + str(reply.get('exit'))}): {reply.get('detail', '')}")
    answer = reply.get("answer")
    if not answer:
        how = f"signal {reply['signal']}" if reply.get("signal") else f"exit {reply.get('exit')}"
        raise ReplayError(f"replay worker: {how} without an answer, {reply.get('detail') or 'no output'}")
    if not answer.get("ok"):
        raise ReplayError(f"replay worker: {answer.get('error', 'failed')}")
    return answer


def _plain_launch(argv: list[str], scratch: Path) -> subprocess.Popen:
    """The zygote as a plain child process (the trainer's replays, the benchmark)."""
    with open(scratch / ZYGOTE_LOG, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                cwd=scratch, start_new_session=True)
