"""The CPU kernel set: which instruction sets torch, MKL and oneDNN may use, pinned by the task.

A CPU replay's bits depend on the kernels that computed them, and each library picks
its own from the CPU it finds: torch's ATen (``DEFAULT``, ``AVX2``, ``AVX512``), MKL's
BLAS and oneDNN. A trainer on an AVX2 CPU and a verifier on an AVX-512 one compute
different bits from the same honest code, and before this pin the verifier called
that a mismatch. So the TaskSpec names one kernel set (``environment.cpu_kernels``)
and every party runs with the switches that select it, set before torch starts:

- ``ATEN_CPU_CAPABILITY`` (torch: at most this capability),
- ``MKL_CBWR`` and ``MKL_ENABLE_INSTRUCTIONS`` (MKL's conditional numerical
  reproducibility branch and its instruction ceiling),
- ``ONEDNN_MAX_CPU_ISA`` (oneDNN's ceiling).

A newer CPU can always run an older set; a CPU that cannot run the pinned one (torch
reports a lower capability than asked) abstains rather than accuse anyone. What we
measured (docs/kernels.md): on one AVX-512 Xeon, each set (and each library's switch
alone) gives charlm other bits; a run trained under ``default`` replays bit-exactly
under ``default`` and not under the native kernels (tests/test_kernels.py).

The switches only take effect in a process that has not started torch's kernels:
``env_for`` gives them to a child (the sandbox, a worker), ``ensure`` checks the
current process (the trainer's own run) and ``capability_under`` asks a fresh
interpreter which capability torch ends up with (trusted code only, cached).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

from arledger.errors import ExperimentError

KERNEL_SETS = {
    # pin: (ATEN_CPU_CAPABILITY, MKL_CBWR, MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA)
    "default": ("default", "COMPATIBLE", "SSE4_2", "SSE41"),
    "avx2": ("avx2", "AVX2", "AVX2", "AVX2"),
    "avx512": ("avx512", "AVX512", "AVX512", "AVX512_CORE"),
}
ENV_KEYS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
DEFAULT_PIN = "avx2"  # x86-64 servers since 2013 run it; new tasks pin it unless told otherwise


def env_for(pin: str | None) -> dict[str, str]:
    """The environment variables that select kernel set ``pin`` (none for None: an older task)."""
    if pin is None:
        return {}
    if pin not in KERNEL_SETS:
        raise ExperimentError(f"cpu_kernels: {pin!r} is not one of {', '.join(KERNEL_SETS)}")
    return dict(zip(ENV_KEYS, KERNEL_SETS[pin]))


def preset_default() -> None:
    """In a process started without any kernel switch, set the default pin's (the CLI does this
    first thing: every task it makes, every run it trains, is on ``DEFAULT_PIN`` unless told)."""
    if not current_env():
        os.environ.update(env_for(DEFAULT_PIN))


def current_env() -> dict[str, str]:
    """The kernel switches this process was started with (recorded in the environment)."""
    return {k: os.environ[k] for k in ENV_KEYS if k in os.environ}


def pin_of(env: dict[str, str]) -> str | None:
    """The pin whose switches are exactly ``env``, or None."""
    for pin in KERNEL_SETS:
        if env == env_for(pin):
            return pin
    return None


def expected_capability(pin: str) -> str:
    return KERNEL_SETS[pin][0].upper()


def problem(pin: str | None) -> str:
    """Why this process does not run kernel set ``pin`` ("" if it does, or if there is no pin)."""
    if pin is None:
        return ""
    want = env_for(pin)
    have = current_env()
    if have != want:
        shown = " ".join(f"{k}={v}" for k, v in want.items())
        return (f"cpu_kernels: the task pins {pin!r}; this process was started with "
                f"{have or 'no kernel switches'}: start it with {shown} (artrain run does this itself)")
    import torch  # lazy: this layer loads no torch at import (a zygote, the sandbox); only this check needs it

    cap = torch.backends.cpu.get_cpu_capability()
    if cap != expected_capability(pin):
        return (f"cpu_kernels: the task pins {pin!r} but torch runs {cap} here: this CPU cannot run "
                f"the task's kernel set, or this process computed before the switches were set")
    return ""


def ensure(pin: str | None, reexec: bool = False) -> None:
    """Make this process run kernel set ``pin``, or raise ExperimentError.

    The switches are read when a library first runs a kernel, so setting them now works
    in a process that has not computed anything yet (torch imported is fine). One that
    has (torch's capability is already fixed to another set) is re-executed with them
    when ``reexec`` (the artrain CLI, before any work), else refused.
    """
    if pin is None:
        return
    want = env_for(pin)
    have = current_env()
    if have and have != want:
        why = problem(pin)
    else:
        os.environ.update(want)
        why = problem(pin)
    if not why:
        return
    if reexec and _is_cli_process() and os.environ.get("ARLEDGER_KERNELS_REEXEC") != pin:
        env = {**os.environ, **want, "ARLEDGER_KERNELS_REEXEC": pin}
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    raise ExperimentError(why)


def _is_cli_process() -> bool:
    """True in the artrain/arverify executables (safe to replace), not in a library caller's
    process (a test runner calling the CLI in process gets the error instead)."""
    return Path(sys.argv[0]).name in ("artrain", "arverify") or sys.argv[0].endswith("arledger/cli/__main__.py")


@functools.lru_cache(maxsize=8)
def capability_under(pin: str | None) -> str:
    """torch's CPU capability in a fresh interpreter started with ``pin``'s switches.

    Asked of this process first when it runs under the same switches: a fresh one gets
    the lesser of the CPU's best and the pin's set, so where this process already reached
    the pin's set (``problem`` is empty), a fresh one would too, and starting one (torch's
    import, 1.5 s) tells nothing new."""
    if pin is not None and not problem(pin):
        return expected_capability(pin)
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(env_for(pin))
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    return (out.stdout.strip().splitlines() or ["unknown"])[-1]
