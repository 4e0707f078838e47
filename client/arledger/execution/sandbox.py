"""Run code you did not write (someone's ``train.py``, a task's harness) in a hermetic sandbox.

A verifier replays code that a stranger published, written to detect when it is being
verified; a trainer trains on the best claim's code, written by whoever made that
claim. Either way the code runs in a separate process that sees the same world on
every machine and nothing of the machine's owner (keys, keystore, ``ARLEDGER_HOME``,
environment, network):

- no network (a fresh, empty network namespace: not even the host's loopback);
- a minimal filesystem (``bwrap`` backend), all read-only except one scratch dir:

      /opt/python     the interpreter (its base prefix), data sources of held-out sets hidden
      /opt/site       the verifier's site-packages (torch, safetensors, ...)
      /opt/src        arledger, arstore
      /usr/lib/<arch> the C libraries, /lib and /lib64 as links
      /proc/cpuinfo   the host's first CPU, once per visible CPU (torch reads it to pick its kernels)
      /etc/passwd, /etc/group, /etc/hostname: fixed contents
      /dev            the minimal device set; /tmp empty and read-only
      /scratch        the only writable place: one request dir at a time

  so paths, hostname (``arledger``), user (uid/gid 65534), environment (a fixed set)
  and visible CPU count (``cpus``) are identical for every verifier; there is no
  /proc/self/mountinfo or /sys to name a host path;
- CPU-time, address-space, file-size and process-count limits, and a wall clock.

Two backends:

``bwrap``   Debian's bubblewrap: user, pid, net, ipc and uts namespaces and the layout
            above; the rlimits are set before bubblewrap starts, a pids cgroup caps
            the process count where one can be made.
``rlimit``  the fallback where bubblewrap is missing or cannot create namespaces:
            the same rlimits and wall clock, a new network namespace through
            ``unshare(2)`` (refusing to run if that fails), and a Python audit hook
            (``arledger.execution.guard``) that refuses writes outside the scratch
            dir and process spawning. NOT hermetic (the host's files are readable)
            and weaker against native code; ``SandboxResult.backend`` says which ran.

A run that breaks a limit is reported (``violation``), never raised: for the
verifier it is a failed replay of that segment, and the watcher carries on.

Long-lived sandboxed processes (``popen``, ``replay_pool``): the replay zygote
(``arledger.execution.zygote``) is started once inside the same sandbox, with
the scratch root at ``/scratch``; each forked child sets the per-run limits for
itself, and the zygote kills it on the wall clock and sweeps its pid namespace after
it (docs/replay.md). ``executor()`` / ``pool_executor()`` are the two
``arledger.execution.executors`` executors the verifier uses.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import arledger
from arledger.errors import SandboxUnavailable
from arledger.execution.executors import Executor, parse_answer, PoolExecutor, worker_argv
from arledger.execution.kernels import current_env
from arledger.execution.limits import apply_rlimits, classify, Limits, SANDBOX_SETUP_EXIT
from arledger.execution.pool import ReplayPool, zygote_argv

MAX_OUTPUT_BYTES = 1 << 20  # stdout/stderr kept for the report

GUARD_MODULE = "arledger.execution.guard"  # the rlimit backend's audit hook, run as a program
INNER_PYTHON_PREFIX = "/opt/python"
INNER_SITE = "/opt/site"
INNER_SRC = "/opt/src"
INNER_SCRATCH = "/scratch"
HOSTNAME = "arledger"
SANDBOX_UID = 65534
# Held-out data that some interpreters ship, hidden from claim code whatever the task says
# (a task adds its own through its harness's SOURCES: TaskSpec.harness.hidden_sources).
ALWAYS_HIDDEN = ("pydoc_data", "sklearn/datasets/data", "sklearn/datasets/descr", "sklearn/datasets/images")


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


def _inner_env(scratch: str) -> dict[str, str]:
    """The whole environment of a bwrap run: fixed, the same on every verifier."""
    return {
        "PATH": f"{INNER_PYTHON_PREFIX}/bin", "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8",
        "PYTHONPATH": f"{INNER_SITE}:{INNER_SRC}", "LD_LIBRARY_PATH": f"{INNER_PYTHON_PREFIX}/lib:{_libdir()}",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1",
    }


def _scrubbed_env(extra: Mapping[str, str] | None, scratch: Path) -> dict[str, str]:
    """The environment of an rlimit-backend run (the host's interpreter, a few safe keys)."""
    env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
           if k in os.environ}
    env.update(PATH=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", HOME=str(scratch),
               TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env.update(extra or {})
    return env


def _libdir() -> str:
    arch = sysconfig.get_config_var("MULTIARCH") or f"{os.uname().machine}-linux-gnu"
    return f"/usr/lib/{arch}"


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"]).resolve()


def _source_packages() -> dict[str, Path]:
    """What runs inside: the worker (arledger) and the layer below it (arstore), found by
    path (arstore is never imported here: it would load its HTTP client for nothing)."""
    store = importlib.util.find_spec("arstore")
    return {"arledger": Path(arledger.__file__).resolve().parent,
            "arstore": Path(store.origin).resolve().parent}


def _stdlib_rel() -> str:
    return f"lib/python{sys.version_info.major}.{sys.version_info.minor}"


def _canonical_cpuinfo(cpus: int) -> str:
    """The host's first processor block, ``cpus`` times (torch reads its flags; nothing else)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    first = text.strip().split("\n\n")[0]
    keep = [ln for ln in first.splitlines() if not ln.startswith(("cpu MHz", "bogomips", "core id", "apicid",
                                                                  "initial apicid", "physical id", "siblings",
                                                                  "cpu cores"))]
    blocks = []
    for i in range(cpus):
        blocks.append("\n".join(f"processor\t: {i}" if ln.startswith("processor") else ln for ln in keep))
    return "\n\n".join(blocks) + "\n\n"


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
    """Runs argv in a sandbox with the given limits; see the module docstring.

    ``hide``: host paths masked (rlimit backend; bwrap shows nothing of the host anyway);
    ``hidden_sources``: paths relative to the interpreter's stdlib or site-packages
    that claim code must not read (held-out data an interpreter ships), added to
    ``ALWAYS_HIDDEN``; ``cpus``: the CPU count claim code sees (affinity and cpuinfo).
    """

    def __init__(self, limits: Limits | None = None, backend: str = "auto", hide: Sequence[Path] = (),
                 hidden_sources: Sequence[str] = (), cpus: int = 1, kernel_env: Mapping[str, str] | None = None):
        self.limits = limits or Limits()
        # the CPU kernel switches (arledger.execution.kernels), part of the fixed environment: the
        # task's (the checker passes them); by default this process's own, so that a run made
        # here replays here with the same bits
        if kernel_env is None:
            kernel_env = current_env()
        self.kernel_env = dict(kernel_env)
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
        # the caller's secrets: its home (deployment, keys, state) and a keystore kept elsewhere
        secrets = [os.environ.get("ARLEDGER_HOME") or Path.home() / ".arledger", os.environ.get("ARLEDGER_KEYSTORE")]
        self.hide = [Path(p) for p in [*secrets, *hide] if p and Path(p).exists()]
        if self.backend == "rlimit":
            # no pid namespace there: /proc/<this pid>/environ (the keystore password) and this
            # process's memory would be readable by code running as the same user, unless the
            # process is not dumpable (then both belong to root)
            _not_dumpable()
        self.hidden_sources = tuple(sorted({*ALWAYS_HIDDEN, *hidden_sources}))
        self.cpus = max(1, int(cpus))
        self._skeleton: Path | None = None

    @property
    def python(self) -> str:
        """The interpreter as the sandboxed program must name it."""
        if self.backend != "bwrap":
            return sys.executable
        return f"{INNER_PYTHON_PREFIX}/bin/python{sys.version_info.major}.{sys.version_info.minor}"

    def inner_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` with the host interpreter replaced by the sandbox's (and ``-S -B``)."""
        argv = list(argv)
        if self.backend == "bwrap" and argv and os.path.realpath(argv[0]) in _host_pythons():
            argv = [self.python, "-S", "-B", *argv[1:]]
        return argv

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

    def _skeleton_dir(self) -> Path:
        """Host files with fixed contents, bound into the sandbox (passwd, group, hostname, cpuinfo)."""
        if self._skeleton is None or not self._skeleton.is_dir():
            d = Path(tempfile.mkdtemp(prefix="arledger-sandbox-skel-"))
            (d / "passwd").write_text(f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{INNER_SCRATCH}:/nonexistent\n")
            (d / "group").write_text(f"sandbox:x:{SANDBOX_UID}:\n")
            (d / "hostname").write_text(HOSTNAME + "\n")
            (d / "cpuinfo").write_text(_canonical_cpuinfo(self.cpus))
            (d / "empty").mkdir()
            for f in d.iterdir():
                os.chmod(f, 0o755 if f.is_dir() else 0o644)
            self._skeleton = d
        return self._skeleton

    def _hidden_binds(self, prefix_host: Path, site_host: Path) -> list[str]:
        """Mask each hidden source wherever the interpreter could import or open it."""
        out = []
        roots = [(prefix_host / _stdlib_rel(), f"{INNER_PYTHON_PREFIX}/{_stdlib_rel()}"),
                 (prefix_host / _stdlib_rel() / "site-packages", f"{INNER_PYTHON_PREFIX}/{_stdlib_rel()}/site-packages"),
                 (site_host, INNER_SITE)]
        empty = self._skeleton_dir() / "empty"
        for rel in self.hidden_sources:
            for host_root, inner_root in roots:
                host = host_root / rel
                if host.is_dir():
                    out += ["--ro-bind", str(empty), f"{inner_root}/{rel}"]
                elif host.exists():
                    out += ["--ro-bind", "/dev/null", f"{inner_root}/{rel}"]
        return out

    def wrap(self, argv: Sequence[str], scratch: Path, readable: Sequence[Path] = (),
             chdir: str | None = None, mount_at: str = INNER_SCRATCH) -> list[str]:
        """The bwrap command line that runs ``argv`` in the hermetic layout (module docstring).

        ``scratch`` (host) is seen at ``mount_at`` (/scratch, or one request dir under it:
        then that dir is the only writable one); ``chdir`` is the working directory inside
        (default ``mount_at``). ``readable``: extra host paths bound read-only at the same
        path (tests of hostile scripts only: it names a host path on purpose).
        """
        prefix = Path(sys.base_prefix).resolve()
        site = _site_packages()
        skel = self._skeleton_dir()
        libdir = _libdir()
        cmd = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
               "--hostname", HOSTNAME, "--die-with-parent", "--new-session", "--clearenv",
               "--ro-bind", str(prefix), INNER_PYTHON_PREFIX, "--ro-bind", str(site), INNER_SITE]
        for name, path in sorted(_source_packages().items()):
            cmd += ["--ro-bind", str(path), f"{INNER_SRC}/{name}"]
        cmd += self._hidden_binds(prefix, site)
        for lib in (libdir, "/usr/lib64"):
            if os.path.isdir(lib):
                cmd += ["--ro-bind", os.path.realpath(lib), lib]
        cmd += ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                "--ro-bind", str(skel / "passwd"), "/etc/passwd", "--ro-bind", str(skel / "group"), "/etc/group",
                "--ro-bind", str(skel / "hostname"), "/etc/hostname", "--ro-bind", str(skel / "cpuinfo"), "/proc/cpuinfo",
                "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in readable:
            real = str(Path(path).resolve())
            cmd += ["--ro-bind", real, real]
        cmd += ["--bind", str(Path(scratch).resolve()), mount_at,
                "--remount-ro", "/dev", "--remount-ro", "/tmp", "--remount-ro", "/",
                "--chdir", chdir or mount_at]
        for k, v in sorted({**_inner_env(chdir or mount_at), **self.kernel_env}.items()):
            cmd += ["--setenv", k, v]
        return cmd + self.inner_argv(argv)

    def _command(self, argv: Sequence[str], scratch: Path, readable: Sequence[Path], chdir: str | None,
                 python_guard: bool = True, mount_at: str = INNER_SCRATCH) -> list[str]:
        if self.backend == "bwrap":
            return self.wrap(argv, scratch, readable, chdir, mount_at)
        if not python_guard:
            return list(argv)
        return [sys.executable, "-m", GUARD_MODULE, str(Path(scratch).resolve()), *argv]

    # -- running -----------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, scratch: Path, readable: Sequence[Path] = (),
            env: Mapping[str, str] | None = None, stdin: bytes | None = None,
            mount_at: str = INNER_SCRATCH) -> SandboxResult:
        """Run ``argv`` in ``scratch``, its only writable directory (seen at ``mount_at`` inside)."""
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(scratch, 0o777)  # the sandboxed uid must be able to write its scratch dir
        cgroup = self._make_pids_cgroup()
        cmd = self._command(argv, scratch, readable, None, mount_at=mount_at)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, cwd=scratch, env=self._env(env, scratch), stdin=subprocess.PIPE,
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
        violation = violation or classify(rc, None, err.decode(errors="replace"))
        cap = MAX_OUTPUT_BYTES
        return SandboxResult(rc, out[-cap:].decode(errors="replace"), err[-cap:].decode(errors="replace"),
                             wall, self.backend, violation,
                             extra={"process_limit": "cgroup" if cgroup else "rlimit"})

    def executor(self, root: Path | None = None) -> "SandboxExecutor":
        """An ``arledger.execution.executors`` executor: one sandboxed worker process per request."""
        return SandboxExecutor(self, root)

    def popen(self, argv: Sequence[str], *, scratch: Path, readable: Sequence[Path] = (),
              env: Mapping[str, str] | None = None, stderr: Any = subprocess.DEVNULL,
              python_guard: bool = True) -> "SandboxPopen":
        """Start ``argv`` sandboxed and long-lived; stdin and stdout are pipes to talk to it.

        The same layout, pids cgroup and rlimits as ``run`` (no wall clock: the caller
        owns the process's life, and must call ``close()`` on it). ``python_guard=False``
        (rlimit backend only) leaves out the audit-hook guard, which refuses fork: for a
        program that installs it in each child itself (``replay_zygote --guard``).
        """
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(scratch, 0o777)
        cgroup = self._make_pids_cgroup()
        cmd = self._command(argv, scratch, readable, None, python_guard)
        try:
            proc = SandboxPopen(cmd, cwd=scratch, env=self._env(env, scratch), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr,
                                preexec_fn=lambda: self._preexec(cgroup))
        except BaseException:
            if cgroup is not None:
                _remove_cgroup(cgroup)
            raise
        proc.cgroup, proc.backend = cgroup, self.backend
        return proc

    def replay_pool(self, scratch: Path | None = None):
        """A ``ReplayPool`` whose zygote runs in this sandbox, children under ``self.limits``."""
        def launch(argv: list[str], root: Path, log_path: Path) -> subprocess.Popen:
            with open(log_path, "ab") as log:
                return self.popen(argv, scratch=root, stderr=log, python_guard=False)

        bwrap = self.backend == "bwrap"
        argv = zygote_argv(guard=None if bwrap else GUARD_MODULE, pid_namespace=bwrap)
        return ReplayPool(scratch, limits=self.limits, launch=launch, argv=argv,
                          inner_root=INNER_SCRATCH if bwrap else None, sandboxed=True)

    def pool_executor(self, scratch: Path | None = None):
        """An ``arledger.execution.executors.PoolExecutor`` over ``replay_pool()`` (started on first use)."""
        return PoolExecutor(self.replay_pool(scratch))

    def _env(self, extra: Mapping[str, str] | None, scratch: Path) -> dict[str, str]:
        """The environment bwrap (which clears it) or the rlimit guard starts from."""
        env = _scrubbed_env({**self.kernel_env, **(extra or {})}, scratch)
        if self.backend == "rlimit":
            env["ARVERIFY_GUARD_HIDDEN"] = os.pathsep.join(str(p) for p in self.hidden_host_paths())
        return env

    def hidden_host_paths(self) -> list[Path]:
        """What the rlimit backend's guard refuses to open: the verifier's secrets and the hidden sources."""
        prefix, site = Path(sys.base_prefix).resolve(), _site_packages()
        roots = [prefix / _stdlib_rel(), prefix / _stdlib_rel() / "site-packages", site]
        found = [r / rel for rel in self.hidden_sources for r in roots if (r / rel).exists()]
        return [p.resolve() for p in [*self.hide, *found]]

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
        try:  # the CPUs claim code sees: the first ``cpus`` this process may use
            allowed = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, allowed[: self.cpus])
        except OSError:
            pass
        # bwrap's pid namespace and the pids cgroup bound the process count; the rlimit
        # backend has only RLIMIT_NPROC, set after unshare (a new user namespace resets it)
        apply_rlimits(self.limits, processes=False)
        if self.backend == "bwrap":
            return  # bwrap makes the namespaces
        if not (_unshare(_CLONE_NEWNET) or _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)):
            os._exit(SANDBOX_SETUP_EXIT)  # never run without the network namespace
        apply_rlimits(self.limits, processes=True)


class SandboxExecutor(Executor):
    """One sandboxed worker process per request: the request dir is ``/scratch/<label>``."""

    kind = "sandbox"
    copy_inputs = True

    def __init__(self, sandbox: Sandbox, root: Path | None = None):
        self.sandbox = sandbox
        self._root = Path(root) if root else Path(tempfile.mkdtemp(prefix="arledger-sandbox-run-"))

    def root(self) -> Path:
        return self._root

    def _execute(self, directory: Path, req) -> dict:
        box = self.sandbox
        if req.limits is not None and req.limits != box.limits:
            box = Sandbox(req.limits, box.backend, box.hide, box.hidden_sources, box.cpus, box.kernel_env)
        # Only the request dir is bound (writable): nothing written here outlives the request.
        res = box.run(worker_argv(), scratch=directory, mount_at=f"{INNER_SCRATCH}/{directory.name}")
        return parse_answer(res.stdout, res.returncode, res.stderr, res.violation)

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


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


_PR_SET_DUMPABLE = 4


def _not_dumpable() -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SandboxUnavailable("prctl(PR_SET_DUMPABLE, 0) failed: this process's environment would be "
                                 "readable by the code the rlimit backend runs; refusing")


def _host_pythons() -> set[str]:
    return {os.path.realpath(p) for p in (sys.executable, sys._base_executable, "python", "python3") if p}


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
