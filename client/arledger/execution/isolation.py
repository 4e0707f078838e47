"""Where code you did not write runs on this machine: the one policy, for trainers and verifiers.

A claim's ``train.py`` is written by whoever profits from a low number; on a trainer's
machine it sits next to the trainer's key, keystore and ``ARLEDGER_HOME``. So every
command that runs claim code (``artrain run``, ``artrain replay``, ``artrain agent``'s
checks and training, a task's baseline) asks this module for its executor:

- ``Isolation(sandboxed=True)`` (the default): a warm zygote pool inside the sandbox
  (``arledger.execution.sandbox``: bubblewrap, or the rlimit backend where bubblewrap
  cannot run, which ``notice()`` says on every such command). No network, no host
  files, a fixed environment: the keystore password in this process's environment
  and the files under ``ARLEDGER_HOME`` are not there to read.
- ``Isolation(sandboxed=False)``: the caller's own experiment, opted out on purpose
  (``--no-sandbox``): a plain zygote pool, as fast, with nothing between the code and
  this machine.

Pools are shared per process and per policy (``executor()``): the agent's many
iterations, a test session's many runs pay the zygote's start-up once. They are
stopped at interpreter exit, or by ``close_all()``.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping

from arledger.execution.executors import PoolExecutor
from arledger.execution.kernels import current_env, env_for
from arledger.execution.limits import Limits
from arledger.execution.pool import ReplayPool
from arledger.execution.sandbox import available_backend, Sandbox

ROLES = ("claim", "harness")  # a harness (held-out data) never shares a pool with claim code
MAX_POOLS = 8  # warm zygotes kept per process (~300 MB each); the least recently used one is stopped


@dataclass(frozen=True)
class Isolation:
    """How code you did not write runs: a request object, hashable (one pool per value).

    ``limits``: what one request may use; ``hidden_sources``: held-out data an interpreter
    ships (a harness's ``SOURCES``), hidden from the code; ``kernel_env``: the CPU kernel
    switches of the task's pin (default: this process's own, so a run made here replays
    here with the same bits); ``backend``: ``auto``, ``bwrap`` or ``rlimit``.
    """

    sandboxed: bool = True
    limits: Limits = field(default_factory=Limits)
    hidden_sources: tuple[str, ...] = ()
    kernel_env: tuple[tuple[str, str], ...] | None = None
    backend: str = "auto"

    @classmethod
    def of(cls, sandboxed: bool = True, limits: Limits | None = None, hidden_sources=(),
           kernel_env: Mapping[str, str] | None = None, backend: str = "auto") -> "Isolation":
        return cls(bool(sandboxed), limits or Limits(), tuple(sorted(set(hidden_sources))),
                   None if kernel_env is None else tuple(sorted(kernel_env.items())), backend)

    def sandbox(self) -> Sandbox:
        env = dict(self.kernel_env) if self.kernel_env is not None else current_env()
        return Sandbox(self.limits, backend=self.backend, hidden_sources=self.hidden_sources, kernel_env=env)


def for_task(spec, backend: str = "auto") -> Isolation:
    """A task's own policy (``spec``: an ``arledger.taskspec.TaskSpec``): its limits, its harness's
    hidden sources, its kernel pin; the sandbox every party's claim code of that task runs in."""
    return Isolation.of(True, spec.sandbox_limits(), spec.hidden_sources, env_for(spec.cpu_kernels), backend)


def notice(iso: Isolation) -> str:
    """One line for the user on how the code will run ("" when it is the full sandbox)."""
    if not iso.sandboxed:
        return ("warning: --no-sandbox: this code runs as you, with your files, environment and network "
                "(use it only for code you wrote)")
    backend = iso.backend if iso.backend != "auto" else _backend()
    if backend == "rlimit":
        return ("warning: bubblewrap cannot run here (apt-get install bubblewrap, or allow user namespaces): "
                "code runs under the rlimit backend, without network, with ARLEDGER_HOME and ARLEDGER_KEYSTORE "
                "hidden and this process's environment closed to it, but NOT hermetic (other host files are "
                "readable)")
    return ""


_lock = threading.Lock()
_pools: OrderedDict[tuple[Isolation, str], PoolExecutor] = OrderedDict()  # least recently used first
@functools.cache
def _backend() -> str | None:
    """The backend ``auto`` picks here (probing it starts a process: once per process)."""
    return available_backend()


def executor(iso: Isolation, role: str = "claim") -> PoolExecutor:
    """This process's warm pool for ``iso`` and ``role`` (started on its first request).

    Raises ``SandboxUnavailable`` when ``iso`` is sandboxed and no sandbox can run here:
    never a silent fall-back to running the code unconfined."""
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {ROLES}")
    key = (iso, role)
    stale: list[PoolExecutor] = []
    with _lock:
        ex = _pools.get(key)
        if ex is None or ex.pool.broken:
            if iso.sandboxed:
                ex = iso.sandbox().pool_executor()
            else:
                ex = PoolExecutor(ReplayPool(limits=iso.limits), copy_inputs=False)
            _pools[key] = ex
        _pools.move_to_end(key)
        while len(_pools) > MAX_POOLS:
            stale.append(_pools.popitem(last=False)[1])
    for old in stale:  # a caller still holding one gets a fresh zygote on its next request
        old.pool.close()
    return ex


def close_all() -> None:
    """Stop every shared pool (their zygotes); the next ``executor()`` starts afresh."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for ex in pools:
        ex.close()


atexit.register(close_all)
