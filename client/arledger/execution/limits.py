"""Resource limits for one run of claim code: one type, one function that applies them,
one classifier of broken limits.

One type for every place that names a limit: the TaskSpec's ``limits`` (its JSON
schema is generated from this class), the sandbox, the zygote's per-child rlimits and
the executor's wall clock. ``apply_rlimits`` is the only code that sets them on a
process (the sandbox before it starts a program, the zygote in each forked child).
No torch import: the zygote and the sandbox read this module before anything heavy
is loaded.
"""

from __future__ import annotations

import resource
import signal
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from arledger.errors import LimitsError

GiB = 1 << 30


# (minimum, maximum) accepted for each limit; the schema says the same.
_RANGES = {"cpu_seconds": (1, 86400), "wall_seconds": (1, 86400), "memory_bytes": (64 << 20, 1 << 40),
           "file_size_bytes": (1 << 20, 1 << 40), "max_processes": (1, 4096)}


@dataclass(frozen=True)
class Limits:
    """What one run of claim code (a replay, a prediction, a harness step) may use."""

    cpu_seconds: int = 900  # RLIMIT_CPU: a busy loop dies here at the latest
    wall_seconds: int = 900  # the whole run, enforced by the parent (sleeping code too)
    memory_bytes: int = 8 * GiB  # RLIMIT_AS; torch alone maps ~0.7 GiB of address space
    file_size_bytes: int = 2 * GiB  # RLIMIT_FSIZE: the largest file the code may write
    max_processes: int = 64  # pids cgroup (or RLIMIT_NPROC): stops fork bombs

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, source: str = "limits") -> "Limits":
        if d is None:
            return cls()
        unknown = set(d) - set(_RANGES)
        if unknown:
            raise LimitsError(f"{source}: unknown limit(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(_RANGES)})")
        out = {}
        for key, value in d.items():
            lo, hi = _RANGES[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise LimitsError(f"{source}.{key}: {value!r} is not a number in {lo}..{hi}")
            out[key] = int(value)
        return cls(**out)

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}

    def key(self) -> tuple:
        return tuple(sorted(self.to_dict().items()))

    @staticmethod
    def json_schema() -> dict[str, Any]:
        """The TaskSpec's ``limits`` schema, from this class (one source of truth)."""
        return {"type": "object", "additionalProperties": False, "required": [f.name for f in fields(Limits)],
                "properties": {k: {"type": "integer", "minimum": lo, "maximum": hi} for k, (lo, hi) in _RANGES.items()}}


DEFAULT = Limits()

# The violations a run can report, by name (``RunFailed.violation``).
VIOLATIONS = ("wall-time", "cpu-time", "memory", "file-size", "process-count", "sandbox-setup")
SANDBOX_SETUP_EXIT = 97  # a sandbox that could not be made (no network namespace): never run unsandboxed

_MEMORY_WORDS = ("MemoryError", "std::bad_alloc", "DefaultCPUAllocator", "Cannot allocate memory")
_PROCESS_WORDS = ("Resource temporarily unavailable", "starting processes is refused")


def classify(returncode: int | None, sig: int | None, text: str) -> str | None:
    """Which limit a run broke, from how it ended and its last words (its log or error).

    ``returncode``: the exit status (a shell's 128+N counts as signal N); ``sig``: the
    signal that ended it, if known. The one classifier for the zygote and the sandbox.
    """
    if sig is None and returncode is not None:
        sig = -returncode if returncode < 0 else (returncode - 128 if 128 < returncode < 160 else None)
    low = text.lower()
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and "cpu" in low):
        return "cpu-time"
    if sig == signal.SIGXFSZ or "File too large" in text:
        return "file-size"
    if any(w in text for w in _MEMORY_WORDS):
        return "memory"
    if any(w in text for w in _PROCESS_WORDS):
        return "process-count"
    if returncode == SANDBOX_SETUP_EXIT:
        return "sandbox-setup"
    return None


def apply_rlimits(limits: Limits, *, processes: bool = True) -> None:
    """Set ``limits`` on the calling process (it and what it starts inherit them).

    CPU time gets a soft limit 5 s under the hard one, so SIGXCPU names the violation;
    no core files, no POSIX message queues (they would outlive the request in a
    sandbox's IPC namespace). ``processes``: also RLIMIT_NPROC, for where no pids
    cgroup or pid namespace bounds the process count. A limit is never raised above
    the hard limit the process already has.
    """
    wanted = [(resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_MSGQUEUE, 0, 0),
              (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 5),
              (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
              (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes)]
    if processes:
        wanted.append((resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes))
    for res, soft, hard in wanted:
        _, have = resource.getrlimit(res)
        if have != resource.RLIM_INFINITY:
            hard = min(hard, have)
            soft = min(soft, hard)
        resource.setrlimit(res, (soft, hard))


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children, as the kernel counts them."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
