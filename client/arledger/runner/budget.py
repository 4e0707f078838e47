"""The compute budget: what a task lets a claim spend, and how a run's work is counted.

The task's step budget alone counts calls, not work: a ``train_step`` that makes four
updates per counted step, or a ``build()`` that trains before step 0, spends the
same number of steps. So the TaskSpec also states the budget in work (``Budget``),
and verifiers measure it when they replay:

- **time**, the rule: the CPU time the kernel accounts to a whole request (the reaped
  process tree, every thread and every process it started, detached or not:
  ``Done.cpu_s``), divided by the CPU time of the task's own baseline doing the same,
  timed by the same party on its own machine (``TimeBase``,
  ``arledger.protocol.timebase``). The task states the ratio (``time_ratio``); the
  ratio, not seconds, is what every party compares, so a slower verifier does not
  accuse a faster trainer. Claim code cannot report or lower it. Within it anything
  goes: more updates per step, a bigger model.
- **FLOPs**, counted by ``flop_counter()`` with the formulas of torch's ``FlopCounterMode``
  (``torch.utils.flop_counter.flop_registry``: matmuls, convolutions, attention) on the
  first step of a segment and on ``build()``: deterministic, the same on every machine,
  the run's report (what ``artrain run`` prints), and a cheap first refusal far above the
  time budget (``FLOPS_CEILING``). The counter runs in the claim's own process, so its
  number is claim code's word: it never decides alone what the time budget allows.
- **parameters** (counted by the verifier from checkpoint 0) and **code size**
  (counted from the pinned code directory): static, exact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FLOPS_HEADROOM = 1.5  # the default time budget: 1.5x the baseline's time (a model a half bigger fits)
FLOPS_CEILING = 3.0  # the FLOP line: 3x the time budget's ratio of the baseline's step, far above what time allows
TIME_TRIES = 3  # a replay over the time line is timed again this many times, each between two timings of the baseline
TIME_FAR = 2.0  # ... unless it is this many times over the line against the baseline timed now: no noise comes near
# The default time_slack_s: a request may also use this much CPU over the ratio, whatever its size.
# The kernel's account of one request (a fork, its page faults, the scheduler) scatters by
# milliseconds, not by a share: the baseline's own build() of 27 ms was timed at up to 42 ms here,
# its 0.17 s segment within 20 ms (docs/budget.md); at a build that small, 1.5x alone leaves 14 ms.
TIME_SLACK_S = 0.02
CODE_BYTES_DEFAULT = 256 * 1024  # train.py + experiment.json
PARAMS_HEADROOM = 4  # default: 4x the baseline's parameter count


@dataclass(frozen=True)
class TimeBase:
    """The task's baseline timed on one machine (``arledger.protocol.baseline.time_base``): the
    CPU time of a request that trains one segment, and of the start (``build()`` plus one
    segment-th of a segment: a build may do some work, never a segment's worth), as the kernel
    accounts them. ``machine``: where it was timed (``arledger.protocol.timebase.machine``)."""

    segment_s: float
    start_s: float
    machine: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TimeBase":
        return cls(float(d["segment_s"]), float(d["start_s"]), str(d.get("machine", "")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measured:
    """What one request of claim code cost: ``flops`` as the worker reported them (claim code's
    word), the ``counted`` steps the request asked to count (the caller's choice, never the
    worker's), and ``cpu_s``, the kernel's account of the request (None where not measured)."""

    flops: Any
    counted: int = 0
    cpu_s: float | None = None


@dataclass(frozen=True)
class Budget:
    """The work a task allows (TaskSpec ``budget``); a missing field (an older spec) is unlimited."""

    steps: int
    segment_steps: int
    flops_per_step: int | None = None  # a segment may count at most segment_steps x this
    startup_flops: int | None = None  # build() (and load_data), counted when checkpoint 0 is rebuilt
    cpu_seconds_per_segment: float | None = None  # older specs: an absolute CPU backstop per request
    time_ratio: float | None = None  # a request may use this x the baseline's CPU time on the same machine
    time_slack_s: float | None = None  # ... and this many seconds more (older specs: none)
    max_params: int | None = None
    max_code_bytes: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Budget":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    # -- the checks (each returns "" or the problem, naming the number and the limit) ------

    def segment_problem(self, m: Measured, base: TimeBase | None) -> str:
        """A replayed segment: the steps it counted (claim's word), its time (the kernel's)."""
        return (_flops_problem(None if self.flops_per_step is None else max(1, m.counted) * self.flops_per_step,
                               m.flops, "the replay",
                               f"{max(1, m.counted)} counted step(s) counted {{n:.4g}} FLOPs, the task allows "
                               f"{{limit:.4g}} ({self.flops_per_step or 0:.4g} per step)")
                or self.time_problem(m.cpu_s, base and base.segment_s, "the segment"))

    def startup_problem(self, m: Measured, base: TimeBase | None) -> str:
        """The rebuild of checkpoint 0 (``load_data`` + ``build()``)."""
        return (_flops_problem(self.startup_flops, m.flops, "the rebuild",
                               "build() counted {n:.4g} FLOPs before step 0, the task allows {limit:.4g}")
                or self.time_problem(m.cpu_s, base and base.start_s, "build()"))

    def time_line(self, base_s: float | None) -> float | None:
        """The CPU seconds a request may use against the baseline's ``base_s`` on the same machine:
        ``time_ratio`` x it plus ``time_slack_s`` (an older spec's absolute backstop where it
        states no ratio); None where there is no line (no base measured, or no time budget)."""
        if self.time_ratio is not None:
            if base_s is None or base_s <= 0:
                return None
            return self.time_ratio * base_s + (self.time_slack_s or 0.0)
        return self.cpu_seconds_per_segment

    def time_problem(self, cpu_s: float | None, base_s: float | None, what: str) -> str:
        """``cpu_s`` against ``time_line(base_s)``; "" where either was not measured."""
        line = self.time_line(base_s)
        if cpu_s is None or line is None or cpu_s <= line:
            return ""
        if self.time_ratio is not None:
            return (f"compute budget: {what} used {cpu_s / base_s:.2f}x the baseline's CPU time on this machine "
                    f"({cpu_s:.3f} s, the baseline {base_s:.3f} s); the task allows "
                    f"{self.time_ratio:g}x{self._slack_ms(' and {ms} ms')}")
        return (f"compute budget: {what} used {cpu_s:.1f} s of CPU, the task's backstop is "
                f"{self.cpu_seconds_per_segment:.1f} s")

    def _slack_ms(self, words: str) -> str:
        """``words`` with the slack in milliseconds, or "" where the spec states none."""
        return words.format(ms=f"{self.time_slack_s * 1000:.0f}") if self.time_slack_s else ""

    def rule(self) -> str:
        """The time budget in words, for ``artrain task show``."""
        if self.time_ratio is not None:
            more = self._slack_ms(", and {ms} ms more")
            return (f"each segment may use at most {self.time_ratio:g}x the CPU time of the task's baseline "
                    f"on your machine (build() {self.time_ratio:g}x the baseline's start){more}, as the kernel "
                    f"counts it: every process and thread the code starts")
        if self.cpu_seconds_per_segment is not None:
            return f"each segment may use at most {self.cpu_seconds_per_segment:g} s of CPU (an older task's backstop)"
        return "no time budget (an older task)"

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
        import torch  # lazy: the budget's rules are read by commands that never compute (task show)
        from torch.utils._python_dispatch import TorchDispatchMode  # lazy: as torch
        from torch.utils._pytree import tree_map  # lazy: as torch
        from torch.utils.flop_counter import flop_registry  # lazy: as torch

        def _shapes(tree: Any) -> Any:
            return tree_map(lambda x: x.shape if isinstance(x, torch.Tensor) else x, tree)

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


def fmt_flops(n: int | None) -> str:
    if n is None:
        return "-"
    if n == 0:
        return "0"
    exp = min(int(math.log10(abs(n)) // 3), 5)
    return f"{n / 10 ** (3 * exp):.3g}{['', 'k', 'M', 'G', 'T', 'P'][exp]}"
