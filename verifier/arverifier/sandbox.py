"""Run untrusted claim code (a replay of someone's `train.py`) in a sandbox.

A verifier executes code that a stranger published. The replay therefore runs in a
separate process with:

- no network (a fresh, empty network namespace: not even the host's loopback),
- a read-only view of the filesystem except one scratch directory, with the
  verifier's own secrets (``ARLEDGER_HOME``, extra ``hide`` paths) masked and a
  scrubbed environment (no ``ARLEDGER_KEY``),
- CPU-time, address-space, file-size and process-count limits, and a wall clock.

Two backends:

``bwrap``   Debian's bubblewrap: user, pid, net, ipc and uts namespaces, ``/``
            bound read-only, ``/tmp`` a private tmpfs, the scratch dir bound
            read-write, limits set by ``prlimit`` inside.
``rlimit``  the fallback where bubblewrap is missing or cannot create namespaces:
            the same rlimits and wall clock, a new network namespace through
            ``unshare(2)`` (refusing to run if that fails), and a Python audit hook
            (``arverifier.sandbox_guard``) that refuses writes outside the scratch
            dir and process spawning. Weaker than bwrap against native code, and
            said so in ``SandboxResult.backend``.

The process count is capped by a per-run ``pids`` cgroup where one can be made
(RLIMIT_NPROC alone is ignored for processes whose real uid is root on the host, and a
user namespace does not change that), else by RLIMIT_NPROC.

A run that breaks a limit is reported (``violation``), never raised: for the
verifier it is a failed replay of that segment, and the watcher carries on.

Long-lived sandboxed processes (``popen``, ``replay_pool``): the replay zygote
(``arledger.runner.replay_zygote``) is started once inside the same namespaces,
read-only root, pids cgroup and rlimits, with a scratch ROOT under which each request
gets its own directory, and read-only ``readable`` roots (the verifier's work dir for
claims) whose later contents stay reachable. Each forked child sets the per-run limits
for itself; the zygote kills it on the wall clock (docs/replay.md).
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from arledger.errors import ArledgerError

GiB = 1 << 30


class SandboxUnavailable(ArledgerError):
    """No sandbox backend can run here (and running unsandboxed is never chosen silently)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run."""

    cpu_seconds: int = 900  # RLIMIT_CPU per process: a busy loop dies here at the latest
    wall_seconds: float = 900.0  # whole run, enforced by the parent (sleeping code too)
    memory_bytes: int = 8 * GiB  # RLIMIT_AS; torch alone maps ~0.7 GiB of address space
    file_size_bytes: int = 2 * GiB  # RLIMIT_FSIZE: largest file the code may write
    max_processes: int = 64  # RLIMIT_NPROC inside the sandbox's own uid: stops fork bombs
    max_output_bytes: int = 1 << 20  # stdout/stderr kept for the report


@dataclass
class SandboxResult:
    """What a sandboxed run did. ``ok`` means exit status 0 and no limit broken."""

    returncode: int
    stdout: str
    stderr: str
    wall_seconds: float
    backend: str
    violation: str | None = None  # wall-time | cpu-time | file-size | memory | None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.violation is None

    def describe(self) -> str:
        if self.ok:
            return f"ok in {self.wall_seconds:.1f}s ({self.backend})"
        why = self.violation or f"exit status {self.returncode}"
        tail = self.stderr.strip().splitlines()[-1:] or [""]
        return f"failed: {why} after {self.wall_seconds:.1f}s ({self.backend}) {tail[0][:200]}".rstrip()


_SAFE_ENV_KEYS = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _scrubbed_env(extra: Mapping[str, str] | None, scratch: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _SAFE_ENV_KEYS if k in os.environ}
    env.update(
        PATH=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        HOME=str(scratch),
        TMPDIR=str(scratch),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        PYTHONHASHSEED="0",
    )
    env.update(extra or {})
    return env


def _bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    probe = [exe, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
             "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def available_backend() -> str | None:
    """The backend ``auto`` picks here: ``bwrap``, ``rlimit`` or None."""
    if _bwrap_works():
        return "bwrap"
    if _can_unshare_net():
        return "rlimit"
    return None


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def _unshare(flags: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(flags) == 0


def _can_unshare_net() -> bool:
    """Try in a throw-away child: unshare(2) changes the calling process for good."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        ok = _unshare(_CLONE_NEWNET) or _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


class Sandbox:
    """Runs argv in a sandbox with the given limits; see the module docstring."""

    def __init__(self, limits: SandboxLimits | None = None, backend: str = "auto",
                 hide: Sequence[Path] = ()):
        self.limits = limits or SandboxLimits()
        if backend == "auto":
            picked = available_backend()
            if picked is None:
                raise SandboxUnavailable(
                    "neither bubblewrap (apt-get install bubblewrap) nor unshare(CLONE_NEWNET) "
                    "works here; refusing to run claim code without a network-less sandbox")
            backend = picked
        if backend not in ("bwrap", "rlimit"):
            raise SandboxUnavailable(f"unknown sandbox backend {backend!r} (bwrap, rlimit, auto)")
        self.backend = backend
        home = Path(os.environ.get("ARLEDGER_HOME", Path.home() / ".arledger"))
        self.hide = [p for p in [home, *map(Path, hide)] if p.exists()]

    # -- process-count limit -------------------------------------------------------------

    def _make_pids_cgroup(self) -> Path | None:
        """A fresh pids cgroup capped at max_processes, or None where none can be made."""
        for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if not (base / "cgroup.procs").exists():
                continue
            if base == Path("/sys/fs/cgroup") and "pids" not in _read(base / "cgroup.subtree_control"):
                continue
            group = base / f"arverify-{os.getpid()}-{time.monotonic_ns()}"
            try:
                group.mkdir()
                (group / "pids.max").write_text(str(self.limits.max_processes))
                return group
            except OSError:
                _remove_cgroup(group)
        return None

    # -- argv construction -------------------------------------------------------------

    def _prlimit_args(self) -> list[str]:
        lim = self.limits
        # soft < hard: the soft limit sends SIGXCPU, which names the violation
        return ["prlimit", f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 5}", f"--as={lim.memory_bytes}",
                f"--fsize={lim.file_size_bytes}", f"--nproc={lim.max_processes}", "--"]

    def wrap(self, argv: Sequence[str], scratch: Path, readable: Sequence[Path] = ()) -> list[str]:
        """The full command line that runs ``argv`` sandboxed (bwrap backend).

        ``/tmp`` is a private tmpfs inside, so inputs that live under /tmp on the host
        are bound back read-only through ``readable``.
        """
        scratch = scratch.resolve()
        cmd = ["bwrap", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
               "--die-with-parent", "--new-session",
               "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for path in _interpreter_paths_under_tmp():
            cmd += ["--ro-bind", path, path]
        for path in self.hide:
            cmd += ["--tmpfs", str(path.resolve())]
        for path in readable:
            real = str(Path(path).resolve())
            cmd += ["--ro-bind", real, real]
        cmd += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
        return cmd + self._prlimit_args() + list(argv)

    # -- running -----------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, scratch: Path, readable: Sequence[Path] = (),
            env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> SandboxResult:
        """Run ``argv`` with ``scratch`` as its only writable directory.

        ``readable``: inputs (code, checkpoints) the program reads; everything else
        outside /tmp is visible read-only anyway.
        """
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        # The sandboxed uid (65534) must be able to write its scratch dir.
        os.chmod(scratch, 0o777)
        full_env = _scrubbed_env(env, scratch)
        cgroup = self._make_pids_cgroup()
        if self.backend == "bwrap":
            cmd = self.wrap(argv, scratch, readable)
        else:
            cmd = [sys.executable, "-m", "arverifier.sandbox_guard", str(scratch.resolve()), *argv]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, cwd=scratch, env=full_env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    preexec_fn=lambda: self._preexec(cgroup))
            violation = None
            try:
                out, err = proc.communicate(stdin, timeout=self.limits.wall_seconds)
            except subprocess.TimeoutExpired:
                violation = "wall-time"
                self._kill_group(proc)
                out, err = proc.communicate()
            if cgroup is not None:
                _kill_cgroup(cgroup)
        finally:
            if cgroup is not None:
                _remove_cgroup(cgroup)
        wall = time.monotonic() - start
        rc = proc.returncode
        violation = violation or _violation_from_status(rc, err)
        cap = self.limits.max_output_bytes
        return SandboxResult(rc, out[-cap:].decode(errors="replace"), err[-cap:].decode(errors="replace"),
                             wall, self.backend, violation,
                             extra={"process_limit": "cgroup" if cgroup else "rlimit"})

    def executor(self):
        """An ``execute(argv, workdir, readable) -> (rc, stdout, stderr)`` for the replay runner.

        A broken limit becomes a ``ReplayError`` naming it: for the verifier that is a
        failed replay of the segment, not a crash of the verifier.
        """
        from arledger.runner.replay import ReplayError

        def execute(argv, workdir, readable):
            res = self.run(argv, scratch=Path(workdir), readable=list(readable))
            if res.violation:
                raise ReplayError(f"sandbox: {res.describe()}")
            return res.returncode, res.stdout, res.stderr

        return execute

    def popen(self, argv: Sequence[str], *, scratch: Path, readable: Sequence[Path] = (),
              env: Mapping[str, str] | None = None, stderr: Any = subprocess.DEVNULL,
              python_guard: bool = True) -> "SandboxPopen":
        """Start ``argv`` sandboxed and long-lived; stdin and stdout are pipes to talk to it.

        The same namespaces, read-only root, pids cgroup and rlimits as ``run`` (no wall
        clock: the caller owns the process's life, and must call ``close()`` on it).
        ``scratch`` is the only writable directory (a root for per-request dirs);
        ``readable`` are bound read-only, directories with whatever appears in them later.
        ``python_guard=False`` (rlimit backend only) leaves out the audit-hook guard,
        which refuses fork: for a program that installs it in each child itself
        (``replay_zygote --guard arverifier.sandbox_guard``).
        """
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(scratch, 0o777)
        cgroup = self._make_pids_cgroup()
        if self.backend == "bwrap":
            cmd = self.wrap(argv, scratch, readable)
        elif python_guard:
            cmd = [sys.executable, "-m", "arverifier.sandbox_guard", str(scratch.resolve()), *argv]
        else:
            cmd = list(argv)
        try:
            proc = SandboxPopen(cmd, cwd=scratch, env=_scrubbed_env(env, scratch), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr,
                                preexec_fn=lambda: self._preexec(cgroup))
        except BaseException:
            if cgroup is not None:
                _remove_cgroup(cgroup)
            raise
        proc.cgroup, proc.backend = cgroup, self.backend
        return proc

    def replay_pool(self, scratch: Path | None = None, readable: Sequence[Path] = ()):
        """A ``ReplayPool`` whose zygote runs in this sandbox, children under ``self.limits``.

        ``readable``: directories the replays' inputs live under (the verifier's work
        root for claims), created if missing and bound read-only; a request with an
        input elsewhere is refused by the pool. ``scratch``: the root of the
        per-request dirs (default a fresh temp dir, removed on close).
        """
        from arledger.runner.replay_pool import ZYGOTE_LOG, ReplayPool

        roots = [Path(r) for r in readable]
        for r in roots:
            if not r.exists():
                r.mkdir(parents=True, exist_ok=True)

        def launch(argv: list[str], root: Path) -> subprocess.Popen:
            with open(root / ZYGOTE_LOG, "ab") as log:
                return self.popen(argv, scratch=root, readable=roots, stderr=log, python_guard=False)

        guard = "arverifier.sandbox_guard" if self.backend == "rlimit" else None
        return ReplayPool(scratch, limits=self.limits, launch=launch, guard=guard, roots=roots)

    def pool_executor(self, scratch: Path | None = None, readable: Sequence[Path] = ()):
        """Alias of ``replay_pool`` (the name the design notes use)."""
        return self.replay_pool(scratch, readable)

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _preexec(self, cgroup: Path | None) -> None:  # pragma: no cover - runs in the child
        os.setsid()
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
        if self.backend == "bwrap":
            return  # bwrap makes the namespaces, prlimit inside sets the limits
        if not (_unshare(_CLONE_NEWNET) or _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)):
            os._exit(97)  # never run without the network namespace
        lim = self.limits
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_seconds, lim.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (lim.memory_bytes, lim.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_size_bytes, lim.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (lim.max_processes, lim.max_processes))


class SandboxPopen(subprocess.Popen):
    """A sandboxed long-lived process; ``close()`` kills what is left and frees its cgroup."""

    cgroup: Path | None = None
    backend: str = ""

    def close(self) -> None:
        Sandbox._kill_group(self)
        if self.cgroup is not None:
            _kill_cgroup(self.cgroup)
            _remove_cgroup(self.cgroup)
            self.cgroup = None
        try:
            self.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()


def _interpreter_paths_under_tmp() -> list[str]:
    """The Python environment and the project's code, where they live under /tmp.

    The sandbox's /tmp is a private tmpfs; a checkout or virtualenv under /tmp (a CI
    clone, say) must be bound back read-only or the worker cannot even start.
    """
    import arledger

    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             str(Path(arledger.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1])}
    cands.update(p for p in sys.path if p)
    out = []
    for c in sorted(cands):
        real = os.path.realpath(c)
        if (real == "/tmp" or real.startswith("/tmp/")) and os.path.exists(real) and real != "/tmp":
            if not any(real.startswith(o + os.sep) for o in out):
                out.append(real)
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _kill_cgroup(group: Path) -> None:
    """Kill whatever is left in the run's cgroup (daemonized children included)."""
    for _ in range(50):
        pids = [int(p) for p in _read(group / "cgroup.procs").split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _remove_cgroup(group: Path) -> None:
    for _ in range(50):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _violation_from_status(rc: int, stderr: bytes) -> str | None:
    """Name the limit a process broke from how it ended (signal or its last words)."""
    sig = -rc if rc < 0 else (rc - 128 if rc > 128 else 0)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and b"cpu" in stderr.lower()):
        return "cpu-time"
    if sig == signal.SIGXFSZ or b"File too large" in stderr:
        return "file-size"
    if b"MemoryError" in stderr or b"std::bad_alloc" in stderr or b"DefaultCPUAllocator" in stderr:
        return "memory"
    if rc == 97:
        return "sandbox-setup"
    return None
