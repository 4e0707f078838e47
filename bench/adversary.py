"""The adaptive adversary: what a cheater who knows the sampler gains, and how often it is caught.

Part of ``bench.verify_bench`` (its "adversary" section); it can run alone:

    python -m bench.adversary                   # charlm 400 steps in 16 segments, 1000 trials
    python -m bench.adversary --steps 40 --segment-steps 10 --trials 100 --quick   # a smoke run
    python -m bench.adversary --wide 1,2,3,4,6,8   # the wide search: that many extra steps, every segment

The adversary controls every claim-side output, and none of them enters the sample
(``arverifier.sampling``: growth measured by the verifier from the checkpoints, random
picks from the chain seed, spread across confirmations). What is left to it is the
shape and the place of its forgery, and it knows the scores. For each attack family it
trains real forged runs (charlm, the same seed as the honest run, so the gain is the
forgery's and not the seed's) at several strengths and places:

- ``forged_jump``: extra training in one segment (``attacks.extra_steps``), ``K/2`` to
  ``3K`` extra steps, at the start, the middle or the end;
- ``spread_jump``: ``2K`` extra steps spread evenly over ``m`` = 2, 4, 8 segments, each
  one's update growing little (the way under the growth score);
- ``data_substitution``: ``m`` = 1, 2, 4 segments trained on the held-out split;
- ``smuggled_updates``: extra updates inside ``train_step`` in some segments. Replays
  reproduce its bits, so only the budget catches it (tests/test_budget.py), and only in a
  replayed segment: the same footprint, checkpoints and detection as the ``extra_steps``
  run with the same extra work, so its curve is ``forged_jump``'s and ``spread_jump``'s.
  Smuggling on every step, or inside ``build()``, or from a start that is not the seed's,
  is caught by any replay or by the rebuild of checkpoint 0 that every verifier runs:
  probability 1 (rows without training).

``gain`` = honest loss - forged loss (the harness's metric); ``p`` = the share of
``trials`` claims (fresh chain seed, claim id and 3 verifier addresses each; the
verifiers check in turn, each seeing the earlier ones' confirmations) in which some
verifier's sample holds a forged segment: a replay of a forged segment is a challenge
(tests/test_e2e_cheats.py, verify_bench's confirmation). ``naive``: the place drawn at
random (the mean over the places trained); ``adaptive``: the adversary's best place.
Expected value for the cheater: ``(1 - p) * reward - p * stake`` (the default terms).

The wide search (``--wide``) trains a few extra steps in one segment, every amount at every
segment, each run forked from the honest run's checkpoint before the forgery. It reports the
epsilon the sampler holds: the largest gain of a forgery caught with p < 0.95 (per sampling
policy in the trade-off).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from arledger import attacks, taskbuild
from arledger.micro import from_micro
from arledger.tasks import TaskTerms
from arledger.templates import template_dir
from arstore import EmbeddedStore
from arverifier.check import ClaimChecker, policy_of
from arverifier.sampling import sample_segments, SamplingPolicy
from bench.runs import fork, norms, train

VERIFIERS = 3
POLICIES = ((1, 1), (2, 1), (3, 1), (4, 1), (2, 2), (6, 1))  # (random, suspicious) per verifier


@dataclass
class Forgery:
    family: str
    strength: str  # e.g. "+25 steps", "m=4"
    forged: tuple[int, ...]
    loss: float
    norms: list[float]
    cosines: list[float]


def _plan(segments: int, k: int, quick: bool, wide: tuple[int, ...] = ()) -> list[tuple[str, str, Any, tuple[int, ...]]]:
    """(family, strength, hook, forged segments) of every forged run to train.

    Places: early (where fast natural decay hides a bigger update), the middle, the end.
    Spreads: evenly over the run, and contiguous at the start (each forged segment's
    neighbours forged too, so that none stands out over its neighbours).
    ``wide``: instead, a few extra steps in one segment, every amount in ``wide`` at every
    segment (the search for the smallest forgery that gains and hides).
    """
    if wide:
        return [("forged_jump", f"+{e} steps", attacks.extra_steps([p], e), (p,)) for e in wide
                for p in range(segments)]
    places = sorted({1, segments - 1}) if quick else sorted({1, 2, segments // 2, segments - 1})
    strengths = (k,) if quick else (k // 4, k // 2, k, 3 * k)
    plan = [("forged_jump", f"+{e} steps", attacks.extra_steps([p], e), (p,)) for e in strengths for p in places]
    for m in ((2,) if quick else (2, 4, 8)):
        if m > segments:
            continue
        where = tuple(range(1, segments, segments // m))[:m]
        plan.append(("spread_jump", f"m={m}, +{2 * k // m} steps each", attacks.extra_steps(where, 2 * k // m), where))
    if segments >= 4 and not quick:
        where = (1, 2, 3)
        plan.append(("spread_jump", f"m=3 contiguous, +{k // 3} steps each", attacks.extra_steps(where, k // 3), where))
    plan += [("data_substitution", "m=1", attacks.data_substitution([p]), (p,)) for p in places]
    for m in (() if quick else (2, 4)):
        where = tuple(range(1, segments, segments // m))[:m]
        plan.append(("data_substitution", f"m={m}", attacks.data_substitution(where), where))
    return plan


def kit_family(attack: str, k: int) -> tuple[str, str]:
    """(family, strength) of a run of ``arledger.attacks.ATTACKS`` (verify_bench's detection runs,
    at random places): they join the adversary's places of the same family and strength."""
    return {"forged_jump": ("forged_jump", f"+{2 * k} steps"), "data_substitution": ("data_substitution", "m=1"),
            "spread_small": ("spread_small", "1 step fewer in every 2nd segment")}[attack]


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train_forgeries(base: Path, store: Any, checker: Any, steps: int, k: int, seed: int, quick: bool,
                    progress=_progress, wide: tuple[int, ...] = ()) -> tuple[float, list[float], list[Forgery]]:
    """The honest run and every forged run of the plan, trained for real (each from the honest
    run's checkpoint before its first forged segment); their update norms."""
    honest = train(base, store, "adv-honest", seed, steps, k)
    out = []
    plan = _plan(steps // k, k, quick, wide)
    for j, (family, strength, hook, forged) in enumerate(plan):
        t = time.perf_counter()
        res = fork(base, store, honest, f"adv-{j}", min(forged), hook)
        out.append(Forgery(family, strength, forged, res.manifest.evaluation.value,
                           *norms(checker, res, base / f"adv-norms-{j}")))
        progress(f"  adversary run {j + 1}/{len(plan)}: {family} {strength} at {list(forged)} "
                 f"({time.perf_counter() - t:.1f}s)")
    return honest.manifest.evaluation.value, norms(checker, honest, base / "adv-norms-honest")[0], out


def detection(norms: list[float], cosines: list[float], forged: tuple[int, ...], policy: Any, trials: int,
              rng: random.Random) -> float:
    """Share of claims where one of 3 verifiers, checking in turn, samples a forged segment."""
    hits = 0
    for _ in range(trials):
        seed, claim_id = rng.randbytes(32), rng.randrange(1, 1 << 32)
        covered: tuple[int, ...] = ()
        for _v in range(VERIFIERS):
            s = sample_segments(claim_id, to_checksum_address(rng.randbytes(20)), seed, len(norms), norms, policy,
                                covered=covered, cosines=cosines)
            covered += s.segments
        hits += bool(set(covered) & set(forged))
    return hits / trials


def curves(honest_loss: float, forgeries: list[Forgery], policy: Any, trials: int, rng: random.Random) -> list[dict]:
    """Per (family, strength): mean gain, naive p (mean over places) and adaptive p (the best place)."""
    rows: dict[tuple[str, str], list[tuple[float, float, tuple]]] = {}
    for f in forgeries:
        rows.setdefault((f.family, f.strength), []).append(
            (honest_loss - f.loss, detection(f.norms, f.cosines, f.forged, policy, trials, rng), f.forged))
    out = []
    for (family, strength), pts in rows.items():
        best = min(pts, key=lambda x: x[1])
        out.append({"family": family, "strength": strength, "gain": round(sum(p[0] for p in pts) / len(pts), 4),
                    "gain_at_best_place": round(best[0], 4), "p_naive": round(sum(p[1] for p in pts) / len(pts), 4),
                    "p_adaptive": round(best[1], 4), "best_place": list(best[2]),
                    "places": [list(p[2]) for p in pts]})
    return out


ALWAYS_CAUGHT = (  # caught by every verifier's own checks, whatever it samples (tests/test_e2e_cheats.py)
    ("smuggled_updates (every step)", "any replay counts more FLOPs than the budget"),
    ("training inside build()", "the rebuild of checkpoint 0 counts build()'s FLOPs"),
    ("a start that is not the seed's", "checkpoint 0 does not rebuild from the seed"),
)


def ev_table(rows: list[dict], epsilon: float, reward: float, stake: float) -> list[dict]:
    """Per family: the adversary's best strength (highest EV among forgeries that gain >= epsilon)."""
    out = []
    families = sorted({r["family"] for r in rows})
    for fam in families:
        cands = [r for r in rows if r["family"] == fam and r["gain_at_best_place"] >= epsilon]
        if not cands:
            out.append({"family": fam, "strength": "-", "gain": None, "p": None, "ev": None,
                        "note": f"no forgery gained epsilon {epsilon}"})
            continue
        best = max(cands, key=lambda r: (1 - r["p_adaptive"]) * reward - r["p_adaptive"] * stake)
        p = best["p_adaptive"]
        out.append({"family": fam, "strength": best["strength"], "gain": best["gain_at_best_place"], "p": p,
                    "ev": round((1 - p) * reward - p * stake, 4), "negative": (1 - p) * reward < p * stake})
    for name, why in ALWAYS_CAUGHT:
        out.append({"family": name, "strength": "any", "gain": None, "p": 1.0, "ev": round(-stake, 4),
                    "negative": True, "note": why})
    return out


def held_epsilon(honest_loss: float, forgeries: list[Forgery], policy: Any, trials: int,
                 rng: random.Random) -> tuple[float, Forgery | None]:
    """The epsilon the sampler holds: the largest gain of a forgery (at its place) caught with
    p < 0.95 (0.0 if every forgery tried is caught), and that forgery."""
    worst, gain = None, 0.0
    for f in forgeries:
        g = honest_loss - f.loss
        if g > gain and detection(f.norms, f.cosines, f.forged, policy, trials, rng) < 0.95:
            worst, gain = f, g
    return gain, worst


def tradeoff(honest_loss: float, forgeries: list[Forgery], epsilon: float, trials: int, rng: random.Random,
             replay_cost: float, fixed_cost: float) -> list[dict]:
    """Per sampling policy: the weakest adaptive detection over forgeries gaining >= epsilon, the
    epsilon it holds, and its cost per verifier (fixed part + replays x the measured cost of one
    replay, as shares of training)."""
    out = []
    for r_count, s_count in POLICIES:
        pol = SamplingPolicy(r_count, s_count)
        n = max(100, trials // 4)
        rows = curves(honest_loss, forgeries, pol, n, rng)
        eligible = [r for r in rows if r["gain_at_best_place"] >= epsilon]
        worst = min(eligible, key=lambda r: r["p_adaptive"]) if eligible else None
        held, by = held_epsilon(honest_loss, forgeries, pol, n, rng)
        out.append({"random": r_count, "suspicious": s_count,
                    "cost_per_verifier": round(fixed_cost + (r_count + s_count) * replay_cost, 3),
                    "min_p_adaptive": worst["p_adaptive"] if worst else None,
                    "weakest": f"{worst['family']} {worst['strength']}" if worst else None,
                    "holds_epsilon": round(held, 4),
                    "held_by": f"{by.family} {by.strength} at {list(by.forged)}" if by else None})
    return out


def print_grid(a: dict) -> None:
    """The wide search: gain / p of every (amount, segment) forgery."""
    grid: dict[str, dict[int, dict]] = {}
    for pt in a["points"]:
        grid.setdefault(pt["strength"], {})[pt["forged"][0]] = pt
    print("    wide search, gain / p per segment (* : caught with p < 0.95):")
    for strength, row in grid.items():
        cells = [f"{i}:{pt['gain']:+.4f}/{pt['p']:.2f}{'*' if pt['p'] < 0.95 else ''}" for i, pt in sorted(row.items())]
        print(f"      {strength:10} " + " ".join(cells))
    print(f"    the sampler holds epsilon {a['holds_epsilon']:.4f}: every forgery tried that gained more "
          "was caught with p >= 0.95")


def print_section(a: dict) -> None:
    print(f"  adaptive adversary (epsilon {a['epsilon']}, reward {a['reward']} / stake {a['stake']} ETH, "
          f"sampling {a['policy']}, {a['trials']} trials):")
    print(f"    {'family':18} {'strength':32} {'gain':>8} {'p naive':>8} {'p adapt':>8}  best place (its gain)")
    for r in a["curves"]:
        print(f"    {r['family']:18} {r['strength']:32} {r['gain']:8.4f} {r['p_naive']:8.3f} {r['p_adaptive']:8.3f}"
              f"  {r['best_place']} ({r['gain_at_best_place']:+.4f})")
    if a.get("wide"):
        print_grid(a)
    print("    expected value for the cheater, (1 - p) reward - p stake, at its best strength and place:")
    for e in a["ev"]:
        gain = "-" if e["gain"] is None else f"{e['gain']:.4f}"
        p = "-" if e["p"] is None else f"{e['p']:.3f}"
        ev = "-" if e["ev"] is None else f"{e['ev']:+.3f} ETH"
        mark = "" if e.get("negative") is None else ("negative PASS" if e["negative"] else "POSITIVE MISS")
        print(f"    {e['family']:32} {e['strength']:26} gain {gain:>7}  p {p:>6}  EV {ev:>12}  {mark} "
              f"{e.get('note', '')}".rstrip())
    print("    sampling trade-off (weakest adaptive detection among forgeries gaining >= epsilon):")
    for t in a["tradeoff"]:
        p = "-" if t["min_p_adaptive"] is None else f"{t['min_p_adaptive']:.3f}"
        print(f"      random {t['random']} + suspicious {t['suspicious']}: cost ~{t['cost_per_verifier']:.3f}  "
              f"min p {p}  ({t['weakest']})  holds epsilon {t['holds_epsilon']:.4f}"
              + (f" (gained by {t['held_by']}, caught p < 0.95)" if t["held_by"] else ""))


def run(trials: int = 1000, steps: int | None = None, segment_steps: int | None = None, seed: int = 1,
        rng_seed: int = 7, quick: bool = False, replay_cost: float | None = None, fixed_cost: float = 0.0,
        extra: list[Forgery] = (), wide: tuple[int, ...] = ()) -> dict:
    """``extra``: forged runs trained elsewhere with seed ``seed`` (verify_bench's, at random places).
    ``wide``: the wide search (``_plan``) in place of the families."""
    rng = random.Random(rng_seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adversary-bench-") as tmp:
        base = Path(tmp)
        store = EmbeddedStore(base / "store")
        req = taskbuild.SpecRequest(template_dir("charlm"), steps=steps, segment_steps=segment_steps,
                                    baseline_loss=9.0)
        spec = taskbuild.build_taskspec(req, store)
        checker = ClaimChecker(store, "0x" + "ad" * 20, workdir=base / "work")
        try:
            honest_loss, honest_norms, forgeries = train_forgeries(base, store, checker, spec.steps,
                                                                   spec.segment_steps, seed, quick, wide=wide)
        finally:
            checker.close()
    forgeries = forgeries + list(extra)
    terms = TaskTerms()
    reward, stake = terms.reward / 1e18, terms.min_trainer_stake / 1e18
    epsilon = from_micro(spec.min_improvement_micro)
    policy = policy_of(spec)
    rows = curves(honest_loss, forgeries, policy, trials, rng)
    points = [{"strength": f.strength, "forged": list(f.forged), "gain": round(honest_loss - f.loss, 4),
               "p": round(detection(f.norms, f.cosines, f.forged, policy, trials, rng), 4)} for f in forgeries]
    per_replay = replay_cost if replay_cost is not None else 1.0 / spec.segments
    out = {"steps": spec.steps, "segment_steps": spec.segment_steps, "segments": spec.segments, "trials": trials,
           "policy": {"random_segments": policy.random_segments, "suspicious_segments": policy.suspicious_segments},
           "honest_loss": round(honest_loss, 4), "honest_norms": [round(u, 5) for u in honest_norms],
           "epsilon": epsilon, "reward": reward, "stake": stake, "curves": rows,
           "ev": ev_table(rows, epsilon, reward, stake), "points": points,
           "tradeoff": tradeoff(honest_loss, forgeries, epsilon, trials, rng, per_replay, fixed_cost)}
    eligible = [r for r in rows if r["gain_at_best_place"] >= epsilon]
    out["min_p_adaptive"] = min((r["p_adaptive"] for r in eligible), default=None)
    out["holds_epsilon"] = max((p["gain"] for p in points if p["p"] < 0.95), default=0.0)
    out["wide"] = list(wide)
    out["every_ev_negative"] = all(e.get("negative", True) for e in out["ev"])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.adversary", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=None, help="budget (default: the template's, 400)")
    ap.add_argument("--segment-steps", type=int, default=None, help="segment length (default: the template's)")
    ap.add_argument("--quick", action="store_true", help="fewer strengths and spreads (a smoke run)")
    ap.add_argument("--wide", default="", metavar="N,N,...",
                    help="the wide search instead: these numbers of extra steps in every segment, e.g. 1,2,4,8")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    wide = tuple(int(x) for x in a.wide.split(",") if x.strip())
    res = run(a.trials, a.steps, a.segment_steps, quick=a.quick, wide=wide)
    if a.json:
        print(json.dumps(res, sort_keys=True))
    else:
        print(f"adversary bench: charlm {res['steps']} steps in {res['segments']} segments ({res['seconds']:.0f}s)")
        print_section(res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
