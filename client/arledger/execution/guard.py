"""In-process guard for the ``rlimit`` sandbox backend (where bubblewrap is missing).

``python -m arledger.execution.guard SCRATCH PROGRAM [ARGS...]`` installs a Python audit
hook, then runs PROGRAM (a ``-m module`` or a script path) in this process. The hook
refuses, for the rest of the process's life:

- opening a file for writing anywhere but under SCRATCH (and /dev/null),
- starting processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``),
- any socket connection (the process already sits in an empty network namespace;
  this only turns the failure into a clear message),
- opening or listing anything under the paths in ``ARVERIFY_GUARD_HIDDEN``
  (``os.pathsep``-separated: the verifier's secrets, held-out data an interpreter ships).

Audit hooks cannot be removed from Python code, but native code (ctypes) can step
around them; the bwrap backend does not rely on them.
"""

from __future__ import annotations

import os
import runpy
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "os.fork", "os.forkpty", "pty.spawn"}
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo"}


def install(scratch: str) -> None:
    root = os.path.realpath(scratch) + os.sep
    hidden = [os.path.realpath(p) for p in os.environ.get("ARVERIFY_GUARD_HIDDEN", "").split(os.pathsep) if p]

    def _hidden(path) -> bool:
        if isinstance(path, int) or path is None:
            return False
        real = os.path.realpath(os.fsdecode(path))
        return any(real == h or real.startswith(h + os.sep) for h in hidden)

    def _writable(path) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        real = os.path.realpath(os.fsdecode(path))
        return real == "/dev/null" or (real + os.sep).startswith(root)

    def hook(event: str, args: tuple) -> None:
        if event in ("open", "os.listdir", "os.scandir") and args and _hidden(args[0]):
            raise PermissionError(f"sandbox: {args[0]} is hidden from claim code")
        if event == "open":
            path, mode, flags = args
            writing = (mode and any(c in mode for c in "wax+")) or (flags & _WRITE_FLAGS)
            if path is not None and writing and not _writable(path):
                raise PermissionError(f"sandbox: writing outside the scratch dir is refused: {path}")
        elif event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
                       "os.truncate", "os.chmod", "os.chown", "shutil.rmtree"):
            path = args[0]
            if not _writable(path):
                raise PermissionError(f"sandbox: {event} outside the scratch dir is refused: {path}")
        elif event in _SPAWN_EVENTS:
            raise PermissionError(f"sandbox: starting processes is refused ({event})")
        elif event in _NET_EVENTS:
            raise PermissionError(f"sandbox: network access is refused ({event})")

    sys.addaudithook(hook)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m arledger.execution.guard SCRATCH PROGRAM [ARGS...]")
    scratch, program, *rest = argv
    # argv as the sandboxed program expects it: [python, -m, module, ...] or [python, script, ...]
    if os.path.basename(program).startswith("python"):
        program, *rest = rest
    install(scratch)
    if program == "-m":
        module, *rest = rest
        sys.argv = [module, *rest]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [program, *rest]
        runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
