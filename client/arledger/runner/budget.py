"""The compute budget: what a task lets a claim spend, and how a run's work is counted.

The task's step budget alone counts calls, not work: a ``train_step`` that makes four
updates per counted step, or a ``build()`` that trains before step 0, spends the
same number of steps. So the TaskSpec also states the budget in work
(``Budget``), and verifiers count it when they replay:

- **FLOPs**, counted by ``flop_counter()`` with the formulas of torch's ``FlopCounterMode``
  (``torch.utils.flop_counter.flop_registry``: matmuls, convolutions, attention):
  deterministic, the same on every machine. The counter sees every torch op of every
  step of a replayed segment, and of ``build()`` when checkpoint 0 is rebuilt. Code
  that behaves differently while counted cannot help itself: its replay would not
  reproduce the trainer's checkpoints. The counter runs in the claim's own process,
  though, so its number is claim code's word: code that tampers with the counter (or
  computes outside torch) meets the second line,
- **CPU time**, measured by the kernel for the whole request (the parent's rusage of
  the reaped process tree: ``Done.cpu_s``), never reported by claim code, against a
  per-segment backstop calibrated on the reference environment when the task was
  made (``calibrate_cpu``). It is coarse on purpose (honest machines differ), so it
  bounds hidden work at about ``CPU_MARGIN`` times the honest cost; the FLOP count is
  the tight line.
- **parameters** (counted by the verifier from checkpoint 0) and **code size**
  (counted from the pinned code directory): static, exact.

The counter's overhead (a Python dispatch per op) is ~1.5x on charlm's steps; the
trainer counts ``build()`` and the first step of every segment (``artrain run``
reports it and refuses an over-budget run before any gas), verifiers count all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry

CPU_MARGIN = 3.0  # backstop: 3x the calibrated honest segment at the FLOP budget
CPU_FLOOR_S = 4.0  # plus a fixed allowance for a request's start-up (a fresh interpreter: ~3 s)
FLOPS_HEADROOM = 1.5  # default budget: 1.5x the baseline's per-step FLOPs (a bigger model fits)
CODE_BYTES_DEFAULT = 256 * 1024  # train.py + experiment.json
PARAMS_HEADROOM = 4  # default: 4x the baseline's parameter count


@dataclass(frozen=True)
class Budget:
    """The work a task allows (TaskSpec ``budget``); a missing field (an older spec) is unlimited."""

    steps: int
    segment_steps: int
    flops_per_step: int | None = None  # a segment may count at most segment_steps x this
    startup_flops: int | None = None  # build() (and load_data), counted when checkpoint 0 is rebuilt
    cpu_seconds_per_segment: float | None = None  # kernel-measured backstop, per replay request
    max_params: int | None = None
    max_code_bytes: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Budget":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def segment_flops(self) -> int | None:
        return None if self.flops_per_step is None else self.flops_per_step * self.segment_steps

    # -- the checks (each returns "" or the problem, naming the number and the limit) ------

    def segment_problem(self, flops: Any, cpu_s: float | None) -> str:
        """A replayed segment's counted FLOPs (claim's word) and measured CPU (the kernel's)."""
        return (_flops_problem(self.segment_flops, flops, "the replay",
                               f"the segment counted {{n:.4g}} FLOPs, the task allows {{limit:.4g}} "
                               f"({self.segment_steps} steps x {self.flops_per_step or 0:.4g})")
                or self.cpu_problem(cpu_s, "the segment"))

    def startup_problem(self, flops: Any, cpu_s: float | None) -> str:
        return (_flops_problem(self.startup_flops, flops, "the rebuild",
                               "build() counted {n:.4g} FLOPs before step 0, the task allows {limit:.4g}")
                or self.cpu_problem(cpu_s, "build()"))

    def cpu_problem(self, cpu_s: float | None, what: str) -> str:
        if self.cpu_seconds_per_segment is not None and cpu_s is not None and cpu_s > self.cpu_seconds_per_segment:
            return (f"compute budget: {what} used {cpu_s:.1f} s of CPU, the task's backstop is "
                    f"{self.cpu_seconds_per_segment:.1f} s")
        return ""

    def static_problems(self, params: int | None, code_bytes: int | None) -> list[str]:
        out = []
        if self.max_params is not None and params is not None and params > self.max_params:
            out.append(f"budget.max_params: the model has {params} parameters, the task allows {self.max_params}")
        if self.max_code_bytes is not None and code_bytes is not None and code_bytes > self.max_code_bytes:
            out.append(f"budget.max_code_bytes: the code is {code_bytes} bytes, the task allows {self.max_code_bytes}")
        return out


def counted_flops(value: Any) -> int | None:
    """A worker's FLOP count if it is one (a non-negative int, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _flops_problem(limit: int | None, flops: Any, who: str, over: str) -> str:
    """"" within ``limit`` (or no limit); else the problem: no count from ``who``, or ``over``
    formatted with the count ``n`` and the ``limit``."""
    if limit is None:
        return ""
    n = counted_flops(flops)
    if n is None:
        return f"compute budget: {who} reported no FLOP count ({flops!r})"
    return f"compute budget: {over.format(n=n, limit=limit)}" if n > limit else ""


def calibrate_cpu(segment_cpu_s: float, flops_ratio: float) -> float:
    """The backstop for a task whose baseline segment took ``segment_cpu_s`` of CPU and whose
    FLOP budget is ``flops_ratio`` x the baseline's: honest code at the budget, times the margin."""
    return round(CPU_MARGIN * segment_cpu_s * max(1.0, flops_ratio) + CPU_FLOOR_S, 1)


def code_bytes(directory: Path) -> int:
    """The bytes of every file under ``directory`` (the pinned code, as a verifier fetched it),
    less Python's bytecode caches: a trainer's import writes them next to train.py, the
    pinned directory never has them."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*")
               if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts)


def param_count(params: dict) -> int:
    """Elements of a checkpoint's model tensors (``checkpoint.model_params``) or a module's."""
    return int(sum(t.numel() for t in params.values()))


def flop_counter():
    """A fresh ``TorchDispatchMode`` that sums FlopCounterMode's formulas and nothing else.

    The same numbers as ``torch.utils.flop_counter.FlopCounterMode().get_total_flops()``
    (tests/test_budget.py compares them) at about half its overhead: no per-module
    bookkeeping. Use as a context manager; ``.total`` is the FLOPs counted so far.
    (Built on first use: this module is read by code that never imports torch.)
    """
    global _MODE
    if _MODE is None:
        class FlopCounter(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.registry = dict(flop_registry)
                self.total = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                formula = self.registry.get(func._overloadpacket)
                if formula is not None:
                    self.total += int(formula(*_shapes(args), **_shapes(kwargs), out_val=_shapes(out)))
                return out

        _MODE = FlopCounter
    return _MODE()


_MODE = None


def _shapes(tree: Any) -> Any:
    return tree_map(lambda x: x.shape if isinstance(x, torch.Tensor) else x, tree)


def fmt_flops(n: int | None) -> str:
    if n is None:
        return "-"
    if n == 0:
        return "0"
    exp = min(int(math.log10(abs(n)) // 3), 5)
    return f"{n / 10 ** (3 * exp):.3g}{['', 'k', 'M', 'G', 'T', 'P'][exp]}"
