"""Determinism settings the runner enforces, seeds derived from (seed, purpose, step),
and the environment record a replay is compared against.

Why the runner and not train.py: a replay must reproduce the trainer's bits from the
checkpoint alone, so everything that changes bits (threads, algorithms, TF32, RNG
seeding) is fixed in one place and recorded in the manifest.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys

import torch

from arledger.execution import kernels as kn

# Fields of the environment that must be equal for an `exact` replay to be meaningful.
EXACT_KEYS = ("torch", "device", "threads", "deterministic", "python_impl", "machine", "cpu_capability", "kernels")
NO_PIN = object()  # environment(): the kernel set of this process, not of a pinned child


def configure(threads: int) -> None:
    """Fix threads, deterministic algorithms and TF32-off before any tensor work."""
    if threads < 1:
        raise ValueError("threads must be >= 1")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process (only allowed once)
    _deterministic_algorithms()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.set_float32_matmul_precision("highest")


def _deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True)`` without its 1 s import of torch._inductor.

    The public call also sets ``torch._inductor.config.deterministic``, which only
    matters for ``torch.compile``; importing inductor costs ~1 s of every replay's
    fresh-process start-up. So: the public call if inductor is already loaded,
    else the same C switch directly (experiments must not use torch.compile).
    """
    if "torch._inductor.config" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
        torch.use_deterministic_algorithms(True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=False)
    assert torch.are_deterministic_algorithms_enabled()


def derive_seed(seed: int, purpose: str, step: int = 0) -> int:
    """A 63-bit seed that depends only on (seed, purpose, step)."""
    digest = hashlib.sha256(f"arledger/{purpose}/{seed}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator handed to ``batch()`` for one step: data order from (seed, step)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(derive_seed(seed, "batch", step))
    return g


def seed_step(seed: int, step: int) -> None:
    """Seed torch's global RNG (dropout and friends) from (seed, step) before a step."""
    torch.manual_seed(derive_seed(seed, "step", step))


def environment(threads: int, device: str = "cpu", kernels=NO_PIN) -> dict:
    """The environment record stored in the manifest (strings and ints only).

    ``kernels``: the environment of a child started with that kernel pin
    (arledger.execution.kernels; None: no switches) instead of this process's own.
    """
    if kernels is NO_PIN:
        switches, capability = kn.current_env(), torch.backends.cpu.get_cpu_capability()
    else:
        switches, capability = kn.env_for(kernels), kn.capability_under(kernels)
    return {
        "python": platform.python_version(),
        "python_impl": sys.implementation.name,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "threads": int(threads),
        # the kernel set torch picked (DEFAULT, AVX2, AVX512) and the switches that pinned torch's,
        # MKL's and oneDNN's: another set computes other bits (docs/kernels.md)
        "cpu_capability": capability,
        "kernels": switches,
        "deterministic": {
            "use_deterministic_algorithms": True,
            "cudnn_deterministic": True,
            "tf32": False,
            "float32_matmul_precision": "highest",
        },
    }


def differences(recorded: dict, current: dict) -> list[str]:
    """Names of the exact-replay-relevant fields that differ between two environments."""
    return [k for k in EXACT_KEYS if recorded.get(k) != current.get(k)]
