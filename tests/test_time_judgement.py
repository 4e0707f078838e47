"""How a replay's time is judged (``arledger.protocol.replay._lowest_time``), with scripted times.

The kernel's CPU times are scripted here, so each case is the exact sequence of tries and
timings of the baseline that decides it; tests/test_budget.py runs the same judgement on real
requests in the sandbox. Each case failed under the rule it names as before:

- a first try far over a kept base from a faster moment is judged against the baseline timed
  again, and with the slack in the line (a 27 ms build at 85 ms was "far" at 3x the ratio);
- tries held to different timings are compared by their share of the line, slack included;
- a slow timing of the baseline on one side of a try lets nothing pass (the try was paired with
  the timing before it alone).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from arledger import checkpoint
from arledger.protocol.replay import _lowest_time, _Timed, Replay
from arledger.runner.budget import Budget, Measured, TimeBase

RULE = Budget(steps=20, segment_steps=10, time_ratio=1.5, time_slack_s=0.02)


@dataclass
class _Done:
    cpu_s: float
    path: Path

    def file(self, name: str) -> Path:
        return self.path


class _Scripted:
    """An executor whose every request writes the same bits and takes the next scripted time."""

    def __init__(self, out: Path, times: list[float]):
        self.out, self.times, self.runs = out, list(times), 0

    @contextlib.contextmanager
    def run(self, req):
        self.runs += 1
        yield _Done(self.times.pop(0), self.out)

    def close(self):
        pass


def _judge(tmp_path: Path, kept: TimeBase, first_s: float, tries: list[float], nows: list[float],
           field: str = "start_s") -> tuple[Measured, TimeBase, _Scripted, list]:
    out = tmp_path / "out.bin"
    out.write_bytes(b"the same bits on every try")
    ex = _Scripted(out, tries)
    timed = list(nows)

    def now() -> TimeBase:
        s = timed.pop(0)
        return TimeBase(s, s) if field == "segment_s" else TimeBase(kept.segment_s, s)

    r = Replay(None, None, ex, ex, threads=1, seed=0, environment={}, budget=RULE, time_base=kept, base_now=now)
    t = _Timed(None, "out.bin", checkpoint.file_state_hash(out), field)
    work, base = _lowest_time(r, t, Measured(0, 0, first_s))
    return work, base, ex, timed


def _verdict(work: Measured, base: TimeBase, field: str = "start_s") -> str:
    return RULE.time_problem(work.cpu_s, getattr(base, field), "build()")


def test_a_build_far_over_a_kept_base_from_a_faster_moment_is_judged_against_the_baseline_now(tmp_path):
    """Kept at 18 ms, the baseline builds in 27 ms now; the honest build took 85 ms on its first
    try (3.1x the kept ratio's line, far over by the ratio alone), then 55 ms."""
    kept = TimeBase(0.3, 0.018)
    work, base, ex, _ = _judge(tmp_path, kept, 0.085, tries=[0.055], nows=[0.027, 0.027])
    assert _verdict(work, base) == "" and work.cpu_s == 0.055 and ex.runs == 1, (work, base)


def test_far_over_even_against_the_baseline_now_one_try_decides(tmp_path):
    """Over twice the line (ratio and slack) against the baseline timed now: no second try."""
    work, base, ex, _ = _judge(tmp_path, TimeBase(0.3, 0.027), 0.13, tries=[0.03], nows=[0.027])
    assert "build() used" in _verdict(work, base) and ex.runs == 0


def test_tries_held_to_different_timings_compare_by_their_share_of_the_line(tmp_path):
    """85 ms against 40 ms is 2.13x and over its line (80 ms); 64 ms against 30 ms is 2.13x too,
    a hair more, yet under its line (65 ms): the raw ratio kept the first and accused."""
    kept = TimeBase(0.3, 0.030)
    work, base, ex, _ = _judge(tmp_path, kept, 0.07, tries=[0.085, 0.064, 0.1], nows=[0.040, 0.040, 0.030, 0.03])
    assert _verdict(work, base) == "" and work.cpu_s == 0.064 and ex.runs == 2, (work, base)


def test_a_slow_timing_of_the_baseline_on_one_side_of_a_try_lets_nothing_pass(tmp_path):
    """A claim at 2x the baseline's segment (0.30 s kept, 0.30 s now); each try has one slow
    timing of the baseline (0.45 s) on one side and a normal one on the other."""
    kept = TimeBase(0.30, 0.05)
    work, base, ex, timed = _judge(tmp_path, kept, 0.62, tries=[0.62, 0.62, 0.62], nows=[0.45, 0.30, 0.45, 0.30],
                                   field="segment_s")
    assert "used 2.07x" in _verdict(work, base, "segment_s") and ex.runs == 3 and not timed, (work, base)


def test_a_machine_slower_now_on_both_sides_of_a_try_spares_the_honest_claim(tmp_path):
    """The kept base says 0.20 s, the machine gives the baseline 0.30 s around the try: the
    honest claim at 1.4x is held to what the baseline takes now."""
    work, base, ex, _ = _judge(tmp_path, TimeBase(0.20, 0.05), 0.42, tries=[0.42], nows=[0.30, 0.31],
                               field="segment_s")
    assert _verdict(work, base, "segment_s") == "" and base.segment_s == 0.30 and ex.runs == 1
