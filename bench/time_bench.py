"""The time budget, measured: what hidden work it catches, whom it never accuses, what it costs.

    python -m bench.time_bench                         # every table (about 35 minutes here)
    python -m bench.time_bench --trials 3 --honest 10  # a quicker look
    python -m bench.time_bench --json > t.json         # one JSON object ...
    python -m bench.time_bench --render t.json         # ... and its tables

A charlm task (``--steps`` in segments of ``--segment-steps``) made on this machine under a
kernel pin, its baseline timed here (``arledger.protocol.timebase``), claims trained in the
sandbox and replayed through the verifier's path (``replay_segment``, ``rebuild_start``:
one request, timed again up to ``TIME_TRIES`` in all when over the line). Each row is a
claim replayed ``trials`` times; ``flagged`` is the share of replays found over budget.

- **detection**: hidden work (``attacks.hidden_updates``: extra updates with the FLOP
  counter switched off) at 1.1x .. 5x of what the budget allows, in the step, in a thread
  and in a detached grandchild; and in ``build()`` (``attacks.hidden_in_build``).
  ``x_allowed`` is the claim's measured time over the allowance (the median of its
  replays' first tries): the target is what the bench aimed at, this is what it got.
- **false accusations**: honest claims at about 90% of the limit (more updates per step,
  counted and honest under the time rule; and models of other shapes, deeper and
  narrower, wider and shallower, topped up to the same time), replayed ``--honest``
  times each: under every kernel set this CPU runs, and with the other core busy
  (a torch matmul loop). ``ratio`` columns are replay time over the baseline's.
- **cost**: a replay's first try over the same segment's training request (both timed by
  the kernel), and the time base itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from arledger import attacks, taskbuild
from arledger.execution import kernels
from arledger.execution.sandbox import Sandbox
from arledger.protocol import run_experiment, RunOptions, timebase
from arledger.protocol.replay import rebuild_start, replay, replay_segment, ReplayOptions
from arledger.runner.budget import TimeBase
from arledger.templates import template_dir
from arstore import EmbeddedStore

FACTORS = (1.1, 1.3, 1.5, 2.0, 3.0, 5.0)
HONEST_AT = 0.9  # honest claims at this share of the limit
SHAPES = {  # charlm configs: the template's is d_model 64, 2 layers, 4 heads
    "deeper-narrower": {"d_model": 32, "layers": 4, "heads": 4},
    "wider-shallower": {"d_model": 96, "layers": 1, "heads": 4},
}
HOG = "import torch\ntorch.set_num_threads(1)\na = torch.randn(384, 384)\nwhile True:\n    a = (a @ a).tanh()\n"


@dataclasses.dataclass
class Bed:
    """A task on this machine under one kernel pin, its baseline timed here."""

    tmp: Path
    store: Any
    spec: Any
    pool: Any
    base: TimeBase
    pin: str
    steps: int
    k: int
    claims: dict = dataclasses.field(default_factory=dict)  # honest claims trained, by name


def bed(tmp: Path, pin: str, steps: int, k: int) -> Bed:
    store = EmbeddedStore(tmp / "store")
    spec = taskbuild.build_taskspec(taskbuild.SpecRequest(template_dir("charlm"), steps=steps, segment_steps=k,
                                                          baseline_loss=7.0, cpu_kernels=pin), store)
    pool = Sandbox(spec.sandbox_limits(), kernel_env=kernels.env_for(pin)).pool_executor()
    base = timebase.local_time_base(timebase.TimeBaseRequest(spec, store, pool, tmp / "home"))
    return Bed(tmp, store, spec, pool, base, pin, steps, k)


def variant(b: Bed, name: str, edit=None, config: dict | None = None) -> Path:
    d = b.tmp / "exp" / name
    shutil.copytree(template_dir("charlm"), d, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    if edit:
        (d / "train.py").write_text(edit((d / "train.py").read_text()))
    if config:
        exp = json.loads((d / "experiment.json").read_text())
        exp["config"].update(config)
        (d / "experiment.json").write_text(json.dumps(exp, indent=2))
    return d


def train(b: Bed, exp: Path, name: str):
    return run_experiment(RunOptions(exp, b.tmp / "runs" / name, b.steps, b.k, 1, 1, cpu_kernels=b.pin),
                          store=b.store)


def _replay(b: Bed, res, work: Path):
    """The verifier's replay: the bed's time base, timed again now before an accusation."""
    timing = timebase.TimeBaseRequest(b.spec, b.store, b.pool, b.tmp / "home")
    return replay(res.manifest, ReplayOptions(run_dir=res.manifest_path.parent, workdir=work, executor=b.pool,
                                              harness_executor=b.pool, budget=b.spec.work_budget, time_base=b.base,
                                              base_now=lambda: timebase.time_now(timing)))


class _FirstTries:
    """The pool, noting each request's CPU time: a replay's first try is what it costs alone."""

    def __init__(self, pool):
        self.pool, self.times = pool, []

    @contextlib.contextmanager
    def run(self, req):
        with self.pool.run(req) as done:
            self.times.append(done.cpu_s)
            yield done

    def close(self):
        pass


def replays(b: Bed, res, n: int, start: bool = False, judge: bool = True) -> list[dict]:
    """``n`` verifier-path replays of segment 0 (or rebuilds of checkpoint 0), each right after
    the baseline is timed again: status, the time counted, the first try's time, and the
    baseline's time next to it (``now_s``: what the claim's ratio is measured against, so a
    machine that drifts over the bench moves both)."""
    tries = _FirstTries(b.pool)
    r = dataclasses.replace(_replay(b, res, b.tmp / "replays"), executor=tries)
    if not judge:  # only measuring: one try each, no second look
        r = dataclasses.replace(r, budget=None)
    timing = timebase.TimeBaseRequest(b.spec, b.store, b.pool, b.tmp / "home")
    out = []
    for _ in range(n):
        now = timebase.time_now(timing)
        first = len(tries.times)
        got = rebuild_start(r) if start else replay_segment(r, 0)
        out.append({"status": got.status, "cpu_s": got.cpu_s, "first_s": tries.times[first],
                    "now_s": now.start_s if start else now.segment_s})
    return out


def summary(rows: list[dict], limit: float) -> dict:
    """``ratio``: a replay's first try over the baseline timed just before it; ``x_allowed``:
    the median ratio over the limit (what the claim is, measured); ``flagged``: the share of
    replays the verifier's rule found over budget."""
    ratios = sorted(r["first_s"] / r["now_s"] for r in rows)
    flagged = sum(r["status"] == "over_budget" for r in rows)
    return {"trials": len(rows), "flagged": round(flagged / len(rows), 3),
            "x_allowed": round(statistics.median(ratios) / limit, 3),
            "ratio_median": round(statistics.median(ratios), 3), "ratio_min": round(ratios[0], 3),
            "ratio_p95": round(ratios[int(0.95 * (len(ratios) - 1))], 3), "ratio_max": round(ratios[-1], 3),
            "mismatch": sum(r["status"] not in ("over_budget", "match") for r in rows)}


def _median_ratio(b: Bed, res, n: int = 7) -> float:
    return statistics.median(r["first_s"] / r["now_s"] for r in replays(b, res, n, judge=False))


def _costs(b: Bed, shape: str, config: dict | None, where: str = "inline") -> tuple[float, float]:
    """(a segment's replay ratio, one more update per step's, run ``where``) for a shape, measured
    here: the bare claim and the same with one extra update per step (each trained once per bed)."""
    if shape not in b.claims:
        b.claims[shape] = _median_ratio(b, train(b, variant(b, f"{shape}-bare", config=config), f"{shape}-bare"))
    bare = b.claims[shape]
    key = f"{shape}-plus1-{where}"
    if key not in b.claims:
        def edit(s):
            return attacks.hidden_updates(s, 1.0, where, hide=False)

        b.claims[key] = max(1e-3, _median_ratio(b, train(b, variant(b, key, edit, config), key)) - bare)
    return bare, b.claims[key]


def _aimed(b: Bed, name: str, edit_for, config: dict | None, target: float, start: tuple[float, float]):
    """A claim whose replays take about ``target`` x the baseline's time here: ``edit_for(rate)``
    edits train.py for ``rate`` extra updates per step; from ``start`` = (bare ratio, ratio per
    unit of rate), the rate is corrected on what the trained claim measures (a secant step, up
    to three trainings)."""
    bare, per_rate = start
    rate = max(0.0, (target - bare) / per_rate)
    for attempt in range(3):
        res = train(b, variant(b, f"{name}-{attempt}", edit_for(rate), config), f"{name}-{attempt}")
        got = _median_ratio(b, res)
        if abs(got / target - 1) < 0.015 or attempt == 2 or target > 2 * b.spec.work_budget.time_ratio:
            return res, rate
        if rate > 0 and got > bare:
            per_rate = (got - bare) / rate
        rate = max(0.0, rate + (target - got) / per_rate)
    return res, rate


def detection(b: Bed, trials: int, places=("inline", "thread", "process", "build"), factors=FACTORS) -> list[dict]:
    limit = b.spec.work_budget.time_ratio
    rows = []
    for where in [p for p in places if p != "build"]:
        start = _costs(b, "baseline-shape", None, where)
        for x in factors:
            name = f"hidden-{where}-{x}"
            def edit_for(r, where=where):
                return lambda s: attacks.hidden_updates(s, max(r, 0.02), where)

            res, rate = _aimed(b, name, edit_for, None, x * limit, start)
            n = trials if x <= 1.5 else max(3, trials // 4)
            rows.append({"where": where, "target": x, "rate": round(rate, 3),
                         **summary(replays(b, res, n), limit)})
            print(f"  detection {where:8} target {x:.1f}x: {rows[-1]}", file=sys.stderr, flush=True)
    step = _costs(b, "baseline-shape", None)[1] * b.base.segment_s / b.k  # one update's time, in seconds
    overhead = b.base.start_s - b.base.segment_s / b.k  # the build request's own
    for x in (factors if "build" in places else ()):
        steps = max(1, round((x * limit * b.base.start_s - overhead) / step))
        name = f"hidden-build-{x}"
        res = train(b, variant(b, name, lambda s: attacks.hidden_in_build(s, steps)), name)
        n = trials if x <= 1.5 else max(3, trials // 4)
        rows.append({"where": "build", "target": x, "steps": steps,
                     **summary(replays(b, res, n, start=True), limit)})
        print(f"  detection build    target {x:.1f}x: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def _topped_up(b: Bed, name: str, config: dict | None) -> tuple[Any, float]:
    """An honest claim (a shape, then more counted updates per step) at about ``HONEST_AT`` of the
    limit, trained once per bed."""
    key = f"honest-{name}"
    if key not in b.claims:
        b.claims[key] = _aimed(b, key, lambda r: (lambda s: attacks.hidden_updates(s, r, "inline", hide=False)),
                               config, HONEST_AT * b.spec.work_budget.time_ratio,
                               _costs(b, name, config))
    return b.claims[key]


def honest(b: Bed, trials: int, busy: bool = False, shapes: bool = True) -> list[dict]:
    limit = b.spec.work_budget.time_ratio
    cases = [("baseline-shape", None)] + (list(SHAPES.items()) if shapes else [])
    rows = []
    for name, config in cases:
        res, rate = _topped_up(b, name, config)
        hog = subprocess.Popen([sys.executable, "-c", HOG]) if busy else None
        try:
            rows.append({"pin": b.pin, "case": name, "busy": busy, "extra_updates_per_step": round(rate, 3),
                         **summary(replays(b, res, trials), limit)})
        finally:
            if hog:
                hog.kill()
                hog.wait()
        print(f"  honest {b.pin} {name} busy={busy}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def cost(b: Bed) -> dict:
    res = train(b, template_dir("charlm"), "cost")
    rows = replays(b, res, 10)
    replay_s = statistics.median(r["first_s"] for r in rows)
    train_s = res.manifest.timings["segment_cpu_ms_median"] / 1000
    return {"segment_train_cpu_s": train_s, "replay_cpu_s": round(replay_s, 4),
            "replay_over_training": round(replay_s / train_s, 3), "time_base": b.base.to_dict()}


def _pins() -> list[str]:
    return [p for p in kernels.KERNEL_SETS if kernels.capability_under(p) == kernels.expected_capability(p)]


def _other_pin(pin: str, a) -> list[dict]:
    """The honest baseline-shape rows under another kernel set, in a process started with it."""
    env = {**{k: v for k, v in os.environ.items() if k not in kernels.ENV_KEYS}, **kernels.env_for(pin)}
    out = subprocess.run([sys.executable, "-m", "bench.time_bench", "--pin", pin, "--only-honest",
                          "--honest", str(a.honest), "--steps", str(a.steps), "--segment-steps", str(a.segment_steps),
                          "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["false_accusations"]


def render(out: dict, steps: int, k: int) -> str:
    """The tables of a run (``--json``'s object)."""
    c, tb = out["cost"], out["time_base"]
    lines = [f"time_bench: charlm {steps} steps in segments of {k}, pin {out['pin']}, limit {out['limit']:g}x the "
             f"baseline's time; time base {tb['segment_s']:.3f} s a segment, {tb['start_s']:.3f} s the start"]
    if c:
        lines.append(f"cost: a replay's first try {c['replay_cpu_s']:.3f} s of CPU, the segment's training "
                     f"{c['segment_train_cpu_s']:.3f} s: {c['replay_over_training']:.3f}x")
    lines += ["", "false accusations (honest claims aimed at 90% of the limit; ratio = a replay's first try over "
             "the baseline timed just before it):",
             f"{'pin':8} {'case':16} {'busy':5} {'extra/step':>10} {'trials':>6} {'x_allowed':>9} {'accused':>7} "
             f"{'median':>7} {'p95':>6} {'max':>6}"]
    for r in out["false_accusations"]:
        lines.append(f"{r['pin']:8} {r['case']:16} {str(r['busy']):5} {r['extra_updates_per_step']:>10} "
                     f"{r['trials']:>6} {r['x_allowed']:>9} {r['flagged']:>7} {r['ratio_median']:>7} "
                     f"{r['ratio_p95']:>6} {r['ratio_max']:>6}")
    lines += ["", "detection (hidden work; x_allowed = its measured time over what the budget allows):",
              f"{'where':8} {'target':>6} {'x_allowed':>9} {'trials':>6} {'flagged':>7}"]
    for r in out["detection"]:
        lines.append(f"{r['where']:8} {r['target']:>6} {r['x_allowed']:>9} {r['trials']:>6} {r['flagged']:>7}")
    lines += ["", "targets (no honest claim accused; hidden work measured at 1.3x or more flagged >= 0.95): "
              f"{'met' if out['targets_met'] else 'MISSED'}"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.time_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--segment-steps", type=int, default=10)
    ap.add_argument("--trials", type=int, default=10, help="replays per hidden-work claim (a quarter above 1.5x)")
    ap.add_argument("--honest", type=int, default=50, help="replays per honest claim")
    ap.add_argument("--pin", default=kernels.DEFAULT_PIN)
    ap.add_argument("--only-honest", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only-detection", action="store_true", help="skip the honest claims and the cost")
    ap.add_argument("--places", default="inline,thread,process,build", help="where hidden work runs")
    ap.add_argument("--factors", default=",".join(map(str, FACTORS)), help="hidden work, x what the budget allows")
    ap.add_argument("--render", type=Path, help="print the tables of a --json run's output file, measure nothing")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.render:
        out = json.loads(a.render.read_text().strip().splitlines()[-1])
        print(render(out, a.steps, a.segment_steps))
        return 0
    kernels.ensure(a.pin)
    with tempfile.TemporaryDirectory(prefix="time-bench-") as tmp:
        b = bed(Path(tmp), a.pin, a.steps, a.segment_steps)
        try:
            if a.only_honest:
                print(json.dumps({"false_accusations": honest(b, a.honest, shapes=False)}))
                return 0
            out = {"pin": a.pin, "limit": b.spec.work_budget.time_ratio, "time_base": b.base.to_dict(),
                   "cost": None, "false_accusations": []}
            if not a.only_detection:
                out["cost"] = cost(b)
                out["false_accusations"] = honest(b, a.honest) + honest(b, a.honest, busy=True, shapes=False)
                for pin in _pins():
                    if pin != a.pin:
                        out["false_accusations"] += _other_pin(pin, a)
            out["detection"] = detection(b, a.trials, tuple(a.places.split(",")),
                                         tuple(float(x) for x in a.factors.split(",")))
        finally:
            b.pool.close()
    out["targets_met"] = (all(r["flagged"] == 0 for r in out["false_accusations"])
                          and all(r["flagged"] >= 0.95 for r in out["detection"] if r["x_allowed"] >= 1.3))
    print(json.dumps(out, sort_keys=True) if a.json else render(out, a.steps, a.segment_steps))
    return 0 if out["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
