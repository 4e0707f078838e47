"""A pool of one warm replay zygote: the worker's start-up paid once, not per request.

    with ReplayPool() as pool:                           # ~3 s once: python + torch + dynamo
        ex = PoolExecutor(pool)                          # arledger.execution.executors
        replay_segment(m, 3, executor=ex, run_dir=run)   # a forked child per request

Each request still runs in a process of its own that has never seen another request
(``arledger.execution.zygote``). The pool's scratch root holds the one request
dir being served; ``wipe()`` (called by ``PoolExecutor`` before and after each
request) removes everything else, so nothing a child leaves behind reaches the next.
The verifier launches the zygote inside its sandbox (``arledger.execution.sandbox``), where
the scratch root is seen as ``inner_root`` (``/scratch``).

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
from typing import Callable

from arledger.errors import ReplayError
from arledger.execution.executors import checked_answer, limit_broken, remove_tree
from arledger.execution.limits import Limits

Launch = Callable[[list[str], Path, Path], subprocess.Popen]  # (argv, scratch root, log file)
ZYGOTE_MODULE = "arledger.execution.zygote"
ZYGOTE_LOG = "zygote.log"


def zygote_argv(python: str | None = None, guard: str | None = None, pid_namespace: bool = False) -> list[str]:
    """The command line of the zygote (wrap it in a sandbox as needed)."""
    return [python or sys.executable, "-m", ZYGOTE_MODULE, *(["--guard", guard] if guard else []),
            *(["--pid-namespace"] if pid_namespace else [])]


class ReplayPool:
    """One zygote and the scratch root its children work in; a context manager.

    ``launch(argv, scratch) -> Popen`` starts the zygote (default: a plain child
    process); ``inner_root`` is the scratch root's path as the zygote sees it;
    ``sandboxed`` says whether its children are confined (then inputs are copied in).
    """

    def __init__(self, scratch: Path | str | None = None, *, limits: Limits | None = None,
                 launch: Launch | None = None, argv: list[str] | None = None, inner_root: str | None = None,
                 sandboxed: bool = False, ready_timeout: float = 300.0, answer_margin: float = 30.0):
        self._own_scratch = scratch is None
        self.scratch = Path(tempfile.mkdtemp(prefix="arledger-pool-")) if scratch is None else Path(scratch)
        # Outside the scratch root: a child can reach nothing there that outlives its request.
        self.log_path = self.scratch.with_name(self.scratch.name + "." + ZYGOTE_LOG)
        self.limits = limits or Limits()
        self.launch = launch or _plain_launch
        self.argv = argv or zygote_argv()
        self.inner_root = inner_root or str(self.scratch.resolve())
        self.sandboxed = sandboxed
        self.ready_timeout, self.answer_margin = ready_timeout, answer_margin
        self.startup_s: float | None = None  # of the first zygote: what a verifier pays once
        self.restarts = 0
        self.served = 0
        self.cpu_s = 0.0  # CPU of every request served, as the zygote measured it (rusage)
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
    def broken(self) -> bool:
        """A zygote that did not come back after a crash: every later request raises."""
        return self._broken is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> float:
        """Start the zygote and wait until it is warm; returns the seconds that took."""
        if self._proc is not None and self._proc.poll() is None:
            return 0.0
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o755)
        t0 = time.perf_counter()
        self._buf, self._eof = b"", False
        self._proc = self.launch(list(self.argv), self.scratch, self.log_path)
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
            self.log_path.unlink(missing_ok=True)

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

    def wipe(self) -> None:
        """Remove everything under the scratch root."""
        if not self.scratch.is_dir():
            return
        os.chmod(self.scratch, 0o755)  # the code may have closed the root itself
        for entry in self.scratch.iterdir():
            remove_tree(entry)

    def run(self, directory: Path, limits: Limits | None = None) -> dict:
        """Have a forked child serve the request in ``directory`` (under the scratch root);
        returns the worker's answer or raises ReplayError (``violation`` names a broken limit)."""
        if self._broken:
            raise ReplayError(f"replay zygote: pool unusable: {self._broken}")
        directory = Path(directory)
        if directory.parent.resolve() != self.scratch.resolve():
            raise ReplayError(f"replay pool: {directory} is not a request dir under {self.scratch}")
        if self._proc is None:
            self.start()
        elif self._proc.poll() is not None:
            note = self._restart(f"replay zygote: had died ({_how(self._proc)})")
            if self._broken:
                raise ReplayError(note)
        lim = limits or self.limits
        msg = {"id": next(self._ids), "workdir": f"{self.inner_root}/{directory.name}", "limits": lim.to_dict()}
        if not self.sandboxed:  # the caller's code, as the caller: its environment as of now, as a fresh process
            msg["env"] = dict(os.environ)
        budget = float(lim.wall_seconds) + self.answer_margin
        deadline = time.monotonic() + budget
        try:
            self._proc.stdin.write((json.dumps(msg) + "\n").encode())
            self._proc.stdin.flush()
            reply = self._read_line(deadline)
        except OSError:
            reply = None
        except BaseException:
            # Interrupted while the zygote serves (Ctrl-C, a caller's timeout): its answer would be
            # read as the next request's, and a pool is shared by everyone in the process. Stop it;
            # the next request starts a fresh one.
            self._stop()
            raise
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
        if isinstance(reply.get("cpu_ms"), int):
            self.cpu_s += reply["cpu_ms"] / 1000
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
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return (lines or ["no output"])[-1][:300]


def _how(proc: subprocess.Popen) -> str:
    rc = proc.poll()
    return f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit {rc}"


def _answer(reply: dict) -> dict:
    """The worker's answer from a zygote reply, or a ReplayError naming the broken limit."""
    if reply.get("violation"):
        raise limit_broken(reply["violation"], reply.get("signal") or f"exit {reply.get('exit')}",
                           reply.get("detail", ""))
    answer = reply.get("answer")
    if not answer:
        how = f"signal {reply['signal']}" if reply.get("signal") else f"exit {reply.get('exit')}"
        raise ReplayError(f"replay worker: {how} without an answer, {reply.get('detail') or 'no output'}")
    return checked_answer(answer)


def _plain_launch(argv: list[str], scratch: Path, log_path: Path) -> subprocess.Popen:
    """The zygote as a plain child process (the trainer's replays, the benchmark)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                cwd=scratch, start_new_session=True)
