"""The replay zygote: a warm parent that forks one fresh replay worker per request.

    python -m arledger.execution.zygote [--guard MODULE] [--pid-namespace]

Why: a fresh ``python -m arledger.runner.worker`` pays ~2.7 s before its first
step (1.5 s importing torch, 1.3 s for torch._dynamo, which the optimizer constructors
import), which alone made a 50-step replay cost 3x its training. The zygote pays that
once: it imports the worker module (``WORKER_MODULE``, named, not imported at the top:
the worker belongs to the runner, a layer above this one) and calls its ``warm()``
(torch, a throw-away optimizer so torch._dynamo is loaded, a tiny single-threaded
forward/backward), then forks a child per request. The child is exactly the worker (``run_request(req, base)`` of
``arledger.runner.worker``), started from a process that has never seen claim
code, never trained, and never started an intra-op thread pool; it sets its own limits
after the fork, so one request's hostile code dies alone.

Protocol (one JSON object per line; the zygote's stdout carries nothing else):

    ready   zygote -> {"ready": true, "pid": int, "warm_ms": int}
    request parent -> {"id": any, "workdir": PATH (holds request.json; the child's cwd),
                       "limits": {"cpu_seconds", "wall_seconds", "memory_bytes",
                                  "file_size_bytes", "max_processes"} | null,
                       "env": {name: value} (a plain pool only: the caller's environment now;
                              a sandboxed zygote's children keep the sandbox's fixed one)}
    answer  zygote -> {"id": ..., "answer": {worker answer} | null, "violation": str | null,
                       "exit": int | null, "signal": str | null, "detail": str, "child_ms": int,
                       "cpu_ms": int (the request's process tree, from this zygote's rusage)}

``violation`` names a broken limit: ``wall-time``, ``cpu-time``, ``memory``,
``process-count`` or ``file-size``. The child's stdout and stderr go to
``WORKDIR/worker.log`` (its stdin is /dev/null), its answer through a private pipe.
After the child ends the zygote kills its process group and, being a child
subreaper, every orphan the child left behind, before it reads the next request.
``--guard MODULE``: the child calls ``MODULE.install(workdir)`` before loading any
claim code (the verifier's rlimit backend passes ``arledger.execution.guard``).
``--pid-namespace``: the zygote runs in a pid namespace of its own (the bwrap
sandbox, which has no /proc): after each child it kills every process it may signal
(``kill(-1)``), which there means exactly what the child left behind.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

from arledger.execution.executors import REQUEST_FILE, WORKER_MODULE
from arledger.execution.limits import apply_rlimits, children_cpu, classify, Limits

ANSWER_CAP = 1 << 20  # bytes of a child's answer kept; the rest is drained and dropped
LOG_NAME = "worker.log"
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4


# -- the child --------------------------------------------------------------------------


def _child(msg: dict, answer_fd: int, guard: str | None) -> None:  # pragma: no cover - forked
    """Become a replay worker for one request; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        workdir = msg["workdir"]
        log = os.open(os.path.join(workdir, LOG_NAME), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.closerange(3, answer_fd)
        os.closerange(answer_fd + 1, 1 << 16)
        apply_rlimits(Limits.from_dict(msg.get("limits")))
        os.chdir(workdir)
        if isinstance(msg.get("env"), dict):  # a plain pool: the caller's environment as of the request
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in msg["env"].items()})
        os.environ.update(HOME=workdir, TMPDIR=workdir)
        sys.argv = [WORKER.__file__, REQUEST_FILE]  # what a fresh worker would see
        WORKER.T0 = time.perf_counter()
        if guard:
            importlib.import_module(guard).install(workdir)
        with open(REQUEST_FILE) as fh:
            req = json.load(fh)
        result = WORKER.run_request(req, Path(workdir))
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything is an answer, never a traceback
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    try:
        os.write(answer_fd, (json.dumps(result, sort_keys=True) + "\n").encode())
    finally:
        os._exit(code)


# -- the parent -------------------------------------------------------------------------


def _children() -> list[int]:
    """PIDs whose parent is this process (orphans of a child land here: subreaper)."""
    me, out = os.getpid(), []
    path = f"/proc/self/task/{me}/children"
    try:
        with open(path) as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                out.append(int(name))
    return out


PID_NAMESPACE = False  # set by --pid-namespace
WORKER = None  # the worker module (WORKER_MODULE), imported once before the first fork


def _sweep_ipc() -> int:
    """Remove every System V shared-memory segment, semaphore set and message queue.

    They outlive the process that made them, so they would carry data from one request
    to the next; only called inside the sandbox, whose IPC namespace is the zygote's own.
    Returns how many were removed.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(1024)
    removed = 0
    # (ctl function, INFO cmd, STAT cmd); IPC_RMID = 0
    for fn, info, stat in ((libc.shmctl, 14, 13), (libc.msgctl, 12, 11)):
        top = fn(0, info, buf)
        for idx in range(max(top, -1) + 1):
            ident = fn(idx, stat, buf)
            if ident >= 0 and fn(ident, 0, None) == 0:
                removed += 1
    top = libc.semctl(0, 0, 19, buf)  # SEM_INFO
    for idx in range(max(top, -1) + 1):
        ident = libc.semctl(idx, 0, 18, buf)  # SEM_STAT
        if ident >= 0 and libc.semctl(ident, 0, 0) == 0:
            removed += 1
    return removed


def _sweep(pgid: int) -> int:
    """Kill the child's process group and every process it left behind; returns how many."""
    killed = 0
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if PID_NAMESPACE:  # every process here but us and the namespace's init is the child's
        for _ in range(100):
            try:
                os.kill(-1, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                _reap()
                break
            _reap()
            time.sleep(0.002)
        _sweep_ipc()  # the sandbox's IPC namespace is ours: nothing in it may reach the next request
        return killed
    for _ in range(500):
        kids = _children()
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        _reap()
        if not kids:
            return killed
        time.sleep(0.005)
    return killed


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _log_tail(workdir: str, n: int = 4000) -> str:
    try:
        with open(os.path.join(workdir, LOG_NAME), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - n))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _broken_limit(answer: dict | None, sig: int | None, log: str) -> str | None:
    """Which limit a child broke (``limits.classify`` on its error and log)."""
    error = (answer or {}).get("error", "") if answer and not answer.get("ok") else ""
    return classify(None, sig, str(error) + "\n" + log)


def serve_one(msg: dict, guard: str | None) -> dict:
    """Fork a child for one request, wait for it within its wall clock, clean up after it."""
    t0 = time.perf_counter()
    cpu0 = children_cpu()
    limits = msg.get("limits") or {}
    wall = limits.get("wall_seconds")
    deadline = time.monotonic() + float(wall) if wall else None
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        _child(msg, write_fd, guard)
    os.close(write_fd)
    pidfd = os.pidfd_open(pid)
    buf, status, violation = bytearray(), None, None
    watch = [read_fd, pidfd]
    try:
        while status is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(watch, [], [], left)
            if not ready:
                violation = "wall-time"
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            if read_fd in ready:
                data = os.read(read_fd, 65536)
                if data:
                    buf += data[: max(0, ANSWER_CAP - len(buf))]
                else:
                    watch.remove(read_fd)
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
        _sweep(pid)  # the group and every orphan: nothing of this request outlives it
        os.set_blocking(read_fd, False)
        try:
            while len(buf) < ANSWER_CAP and (data := os.read(read_fd, 65536)):
                buf += data
        except BlockingIOError:
            pass
    finally:
        os.close(read_fd)
        os.close(pidfd)
    answer = None
    first = bytes(buf).split(b"\n", 1)[0]
    try:
        answer = json.loads(first) if first.strip() else None
    except json.JSONDecodeError:
        answer = None
    sig = -os.waitstatus_to_exitcode(status) if os.WIFSIGNALED(status) else None
    code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None
    log = _log_tail(msg["workdir"])
    violation = violation or (_broken_limit(answer, sig, log) if not (answer or {}).get("ok") else None)
    detail = ""
    if not (answer or {}).get("ok"):
        detail = (answer or {}).get("error") or (log.strip().splitlines() or ["no output"])[-1][:300]
    return {"id": msg.get("id"), "answer": answer, "violation": violation, "exit": code,
            "signal": signal.Signals(sig).name if sig else None, "detail": detail,
            "child_ms": int((time.perf_counter() - t0) * 1000),
            # the kernel's account of the request's whole (reaped) process tree: the caller's
            # time budget (arledger.runner.budget), never the child's own report
            "cpu_ms": int(round((children_cpu() - cpu0) * 1000))}


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    global PID_NAMESPACE, WORKER
    guard = None
    args = list(argv)
    if "--pid-namespace" in args:
        args.remove("--pid-namespace")
        PID_NAMESPACE = True
    if args[:1] == ["--guard"] and len(args) == 2:
        guard = args[1]
    elif args:
        print("usage: python -m arledger.execution.zygote [--guard MODULE] [--pid-namespace]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a child come back to us
    # Not dumpable: a child (claim code, same uid) can neither ptrace this process nor read or
    # write its memory (process_vm_*), so it cannot change what the next child is forked from.
    # Children inherit it, so they cannot reach each other either.
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        print("replay zygote: prctl(PR_SET_DUMPABLE, 0) failed", file=sys.stderr)
        return 3
    WORKER = importlib.import_module(WORKER_MODULE)
    warm_ms = WORKER.warm()
    _emit({"ready": True, "pid": os.getpid(), "warm_ms": warm_ms})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict) or "workdir" not in msg:
                raise ValueError("request line needs 'workdir'")
        except ValueError as exc:
            _emit({"id": None, "answer": None, "violation": None, "exit": None, "signal": None,
                   "detail": f"bad request line: {exc}", "child_ms": 0})
            continue
        _emit(serve_one(msg, guard))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Its caller closed our stdin: leave at once. The interpreter's teardown (torch's modules,
    # most of a second) would keep every command that used a pool waiting at its exit, and
    # there is nothing to tear down: every answer was flushed as it was written, and each
    # child was reaped when it answered (the caller kills the group and cgroup that remain).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
