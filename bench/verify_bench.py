"""Verification benchmark: what one verifier pays, what three verifiers catch, how fast they act.

    python -m bench.verify_bench                    # charlm at its default budget, 2000 trials/attack
    python -m bench.verify_bench --trials 500 --json
    python -m bench.verify_bench --no-latency       # skip the anvil part
    python -m bench.verify_bench --steps 40 --segment-steps 10 --trials 30 --runs-per-attack 1 \
        --attacks forged_jump --no-confirm-misses --no-latency      # a smoke run (~1 min)

Three figures, each against its target (docs/verification.md discusses them):

- ``cost_per_verifier``: one verifier's work on an honest claim (``ClaimChecker.check``:
  fetch + hash every checkpoint + update norms + the static budget, the rebuild of
  checkpoint 0 from the seed, the final evaluation: the harness makes the held-out
  inputs, the claim's model predicts on them and on the inputs spliced after this
  verifier's own cuts, the harness scores and checks causality; then the sampled
  replays, the first step's FLOPs counted and each timed by the kernel, in the sandbox) over the claim's
  training time (the manifest's ``train_ms``). Target <= 0.25. The breakdown (fetch /
  start / eval / replay / rest, and the replays' process start-up vs work) comes with it.
- ``detection``: for each attack in ``arledger.attacks`` a few forged runs (different
  seeds, random forged positions) are trained for real; each trial draws a fresh random
  32-byte chain seed, claim id and 3 verifier addresses and asks whether at least one
  verifier's sample (``sampling.sample_segments`` with the update norms measured from the
  forged checkpoints by ``ClaimChecker.update_stats``, with their cosines; the verifiers check in turn, each
  spreading around the earlier ones' confirmations) contains a forged segment. That
  membership shortcut is then CONFIRMED on real replays: for a detecting trial of each
  forged run ``ClaimChecker.check`` must challenge a forged segment (exact mode), and for
  one missing trial (if any) it must confirm. Targets: >= 0.95 for ``forged_jump`` and
  ``data_substitution`` with three verifiers; ``spread_small`` is reported.
- ``adversary`` (``bench.adversary``): the adaptive adversary's curves of loss gained
  against detection, naive and adaptive, the cheater's expected value at the default
  stake and reward, and the sampling trade-off. Targets: every forgery that gains the
  task's epsilon detected with p >= 0.95; every expected value negative.
- ``latency_s``: on a real anvil, from the reveal transaction's receipt to the verifier's
  confirm/challenge receipt, minus the start + replay + evaluation time its verdict reports
  (``replay_eval_s``), with
  a ``VerifierNode`` (confirmations=0) polling every ``--poll-interval`` seconds in its own
  thread, as ``arverify watch`` does. Target <= 5 s.

The "alternatives" section reuses the same forged runs to show what other sampling
policies (more random picks; more suspicious picks) would detect, with their cost
estimated from the measured per-replay cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from arledger import attacks, taskbuild, tasks
from arledger.attacks import ATTACKS
from arledger.chain.ledger import Ledger
from arledger.chain.signer import Signer
from arledger.devnet import LocalChain
from arledger.execution import isolation
from arledger.protocol.replay import assess, rebuild_start, replay, replay_segment, ReplayOptions
from arledger.submit import submit_run
from arledger.templates import template_dir
from arstore import cid_to_digest, EmbeddedStore
from arverifier.check import ClaimChecker, ClaimInfo, policy_of
from arverifier.node import NodeConfig, VerifierNode
from arverifier.sampling import sample_segments, SamplingPolicy, suspicion_scores
from arverifier.state import WatcherState
from bench import adversary as adv
from bench.runs import norms, TASK_ID, train, TRAINER

TARGETS = {"cost_per_verifier_warm": 0.25, "detect_forged_jump": 0.95, "detect_data_substitution": 0.95,
           "adversary_min_p": 0.95, "latency_s": 5.0}
VERIFIERS = 3
ALTERNATIVE_POLICIES = ((1, 1), (2, 1), (3, 1), (2, 2), (4, 1))  # (random, suspicious) per verifier


@dataclass
class ForgedRun:
    attack: str
    seed: int
    forged: tuple[int, ...]  # forged segment indices
    run_dir: Path
    manifest: Any
    manifest_cid: str
    norms: list[float]
    cosines: list[float]

    def summary(self) -> dict:
        def ranks(scores):
            order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
            return [order.index(i) + 1 for i in self.forged]

        out = {"seed": self.seed, "forged": list(self.forged), "loss_micro": self.manifest.evaluation.value_micro,
               "update_norms": [round(u, 5) for u in self.norms], "forged_norm_ranks": ranks(self.norms),
               "forged_growth_ranks": ranks(suspicion_scores(self.norms))}
        return out


def _claim_info(manifest: Any, manifest_cid: str, claim_id: int, seed: bytes, covered: tuple = ()):
    return ClaimInfo(claim_id=claim_id, task_id=TASK_ID, trainer=TRAINER, parent_id=0,
                     code_cid=manifest.code_cid, manifest_digest=cid_to_digest(manifest_cid),
                     merkle_root=bytes.fromhex(manifest.merkle_root[2:]), num_segments=manifest.segments,
                     claimed_loss=manifest.evaluation.value_micro, seed=seed, covered=tuple(covered))


def _job(result: Any, spec: Any, executor: Any, work: Path):
    """A verifier's ``Replay`` of a run: claim code and harness through ``executor`` (sandboxed),
    the TaskSpec's mode and limits, the files from the run dir (hash-checked)."""
    return replay(result.manifest, ReplayOptions(run_dir=result.manifest_path.parent, workdir=work, executor=executor,
                  harness_executor=executor, mode=spec.mode, threshold=spec.threshold, limits=spec.sandbox_limits(),
                  budget=spec.work_budget))


def _attack_hook(attack: str, rng: random.Random, segments: int):
    """(train_segment hook, forged segment indices), positions drawn from ``rng``."""
    if attack == "spread_small":
        every = 2
        return attacks.spread_small(every=every, skipped_steps=1), tuple(range(0, segments, every))
    pos = rng.randrange(segments)
    return attacks.ATTACKS[attack]([pos]), (pos,)


def _random_address(rng: random.Random) -> str:
    return to_checksum_address(rng.randbytes(20))


def detection_trials(runs: list[ForgedRun], trials: int, rng: random.Random, policy=None) -> dict:
    """Share of trials where >= 1 of 3 verifiers samples a forged segment (and the 1-verifier share)."""
    policy = policy or SamplingPolicy()
    hit3 = hit1 = 0
    examples: dict[int, dict] = {}  # per run index: one detecting and one missing trial
    for t in range(trials):
        ri = t % len(runs)
        r = runs[ri]
        seed, claim_id = rng.randbytes(32), rng.randrange(1, 1 << 32)
        who = [_random_address(rng) for _ in range(VERIFIERS)]
        samples, covered = [], ()
        for v in who:  # in turn: each spreads around the confirmations before its own
            samples.append(sample_segments(claim_id, v, seed, len(r.norms), r.norms, policy, covered=covered,
                                           cosines=r.cosines))
            covered += samples[-1].segments
        caught = [bool(set(s.segments) & set(r.forged)) for s in samples]
        hit3 += any(caught)
        hit1 += caught[0]
        ex = examples.setdefault(ri, {})
        if any(caught) and "hit" not in ex:
            j = caught.index(True)  # that verifier, with the confirmations before its own
            ex["hit"] = (claim_id, who[j], seed, tuple(x for s in samples[:j] for x in s.segments))
        if not caught[0] and "miss" not in ex:
            ex["miss"] = (claim_id, who[0], seed, ())
    return {"trials": trials, "detected": hit3, "rate": hit3 / trials, "rate_one_verifier": hit1 / trials,
            "_examples": examples}


def _confirm(checker_for, spec, runs: list[ForgedRun], examples: dict, confirm_misses: bool) -> dict:
    """Real replays: a detecting trial must end in a challenge of a forged segment; a miss in a confirm."""
    out = {"hits_checked": 0, "hits_challenged": 0, "misses_checked": 0, "misses_confirmed": 0, "checks": []}
    for ri, r in enumerate(runs):
        ex = examples.get(ri, {})
        want_miss = confirm_misses and not out["misses_checked"]  # one confirmed miss per attack is enough
        kinds = [("hit", ex.get("hit"))] + ([("miss", ex.get("miss"))] if want_miss else [])
        for kind, trial in kinds:
            if trial is None:
                continue
            claim_id, verifier, seed, covered = trial
            v = checker_for(verifier).check(_claim_info(r.manifest, r.manifest_cid, claim_id, seed, covered), spec)
            rec = {"attack": r.attack, "run_seed": r.seed, "forged": list(r.forged), "trial": kind,
                   "decision": v.decision, "reason": v.reason[:160], "seconds": v.seconds.get("total")}
            if kind == "hit":
                out["hits_checked"] += 1
                ok = (v.decision == "challenge" and v.challenge is not None and v.challenge.kind == "Segment"
                      and v.challenge.segment in r.forged)
                out["hits_challenged"] += ok
                rec["challenged_segment"] = v.challenge.segment if v.challenge else None
            else:
                out["misses_checked"] += 1
                out["misses_confirmed"] += v.decision == "confirm"
            out["checks"].append(rec)
    return out


def _startup_s(replays: list[dict]) -> float:
    """What the replays spent outside training steps (process or fork start-up, data load,
    model build, staging, the parent's checks): wall minus the worker's own work timer."""
    return sum(max(0.0, r.get("wall_s", 0.0) - r.get("work_s", 0.0)) for r in replays)


def _warm_pool_cost(checker: Any, spec: Any, result: Any, segments: list[int], base: Path,
                    check_seed: bytes) -> dict:
    """The checker's own path through a warm sandboxed zygote (start-up paid once per node):
    the rebuild of checkpoint 0, ``assess`` (harness inputs, the evaluation and the
    causality check, harness scores) then the replays, FLOPs counted."""
    t = time.perf_counter()
    with checker.sandbox(spec).pool_executor() as ex:
        ex.pool.start()
        started = time.perf_counter() - t
        job = _job(result, spec, ex, base / "warm-work")
        t = time.perf_counter()
        start = rebuild_start(job)
        start_s = time.perf_counter() - t
        if not start.ok:
            raise RuntimeError(f"warm-pool rebuild of the honest run's start failed: {start}")
        t = time.perf_counter()
        a = assess(job, job.files.weights(), check_seed, probe=False)
        eval_s = time.perf_counter() - t
        ev = a.evaluation
        t = time.perf_counter()
        reps = [replay_segment(job, i) for i in segments]
        replay_s = time.perf_counter() - t
    if not all(r.ok for r in reps):
        raise RuntimeError(f"warm-pool replay of the honest run failed: {[r.status for r in reps]}")
    if not ev.ok or not (ev.causality or {}).get("checked"):
        raise RuntimeError(f"warm-pool evaluation of the honest run failed: {ev.problem or ev.causality}")
    return {"warm": {"pool_start_s": round(started, 3), "start_s": round(start_s, 3), "replay_s": round(replay_s, 3),
                     "eval_s": round(eval_s, 3), "eval_harness_s": ev.wall_s,
                     "replay_startup_s": round(_startup_s([r.to_dict() for r in reps]), 3)}}


def measure_latency(spec_req: dict, run_dir: Path, store: Any, base: Path, poll_interval: float) -> dict:
    """A real anvil: reveal -> the verifier's confirm/challenge receipt, minus its start + replay + eval time."""
    chain = LocalChain.start(log_file=base / "anvil.log")
    try:
        keys, deployer = chain.keys, chain.ledger
        sponsor, trainer = (deployer.with_account(Signer.from_key(k)) for k in keys[:2])
        task_id, spec, _, _ = tasks.create_task(sponsor, store, tasks.TaskRequest(**spec_req))
        vledger = Ledger(Ledger.connect_rpc(chain.rpc_url), deployer.address, Signer.from_key(keys[3]))
        vledger.register_verifier(10**18)

        acted: dict[str, Any] = {}
        verdicts: list = []
        ready, stop = threading.Event(), threading.Event()

        def watch() -> None:  # the node in its own thread (its SQLite connection lives here)
            checker = ClaimChecker(store, vledger.account_address, workdir=base / "verifier" / "work")
            try:
                orig = checker.check
                checker.check = lambda info, sp: verdicts.append(orig(info, sp)) or verdicts[-1]
                node = VerifierNode(vledger, store, WatcherState(base / "verifier" / "state.sqlite"), checker,
                                    NodeConfig(confirmations=0, finalize=False, settle=False))
                node.step()
                ready.set()
                while not stop.is_set():
                    t_step = time.perf_counter()
                    rep = node.step()
                    for tx in rep.transactions:
                        if tx.get("action") in ("confirm", "challenge"):
                            acted.update(tx, at=time.perf_counter())
                            return
                    stop.wait(max(0.0, poll_interval - (time.perf_counter() - t_step)))
            except BaseException as exc:  # reported by the caller, never swallowed
                acted["error"] = repr(exc)
                ready.set()
            finally:
                checker.close()  # its sandboxed zygote pool

        th = threading.Thread(target=watch, daemon=True)
        th.start()
        ready.wait(60)
        sub = submit_run(trainer, store, run_dir, task_id)
        t_reveal = time.perf_counter()
        th.join(300)
        stop.set()
        if "error" in acted or "at" not in acted:
            raise RuntimeError(f"verifier node did not act on claim {sub.claim_id}: {acted.get('error', 'timeout')}")
        v = verdicts[-1]
        raw = acted["at"] - t_reveal
        work = v.seconds.get("start", 0.0) + v.seconds.get("replay", 0.0) + v.seconds.get("eval", 0.0)
        return {"claim_id": sub.claim_id, "action": acted["action"], "poll_interval_s": poll_interval,
                "reveal_to_action_s": round(raw, 3), "replay_eval_s": round(work, 3),
                "fetch_s": v.seconds.get("fetch"), "latency_s": round(raw - work, 3), "gas": acted.get("gas")}
    finally:
        chain.stop()


def run(trials: int = 2000, runs_per_attack: int = 3, steps: int | None = None, segment_steps: int | None = None,
        seed: int = 20240601, latency: bool = True, confirm_misses: bool = True, poll_interval: float = 1.0,
        attacks: tuple[str, ...] = ("forged_jump", "data_substitution", "spread_small"),
        adversary: bool = True, adversary_quick: bool = False) -> dict:
    """Run the benchmark; returns every figure with its target (see the module docstring)."""
    rng = random.Random(seed)
    t_all = time.perf_counter()
    out: dict[str, Any] = {"template": "charlm", "trials": trials, "runs_per_attack": runs_per_attack,
                           "verifiers": VERIFIERS, "rng_seed": seed, "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp, contextlib.ExitStack() as closing:
        base = Path(tmp)
        store = EmbeddedStore(base / "store")
        req = taskbuild.SpecRequest(template_dir("charlm"), steps=steps, segment_steps=segment_steps)
        spec = taskbuild.build_taskspec(req, store)
        out.update(steps=spec.steps, segment_steps=spec.segment_steps, segments=spec.segments,
                   sampling=dict(spec.sampling), mode=spec.mode)
        checkers: dict[str, ClaimChecker] = {}

        def checker_for(addr: str) -> ClaimChecker:
            if addr not in checkers:  # each keeps a warm sandboxed pool until the bench ends
                checkers[addr] = ClaimChecker(store, addr, workdir=base / "work")
                closing.callback(checkers[addr].close)
            return checkers[addr]

        # -- cost: one verifier, one honest claim ------------------------------------------
        honest = train(base, store, "honest", 1, spec.steps, spec.segment_steps)
        train_s = honest.manifest.timings["train_ms"] / 1000
        info = _claim_info(honest.manifest, honest.manifest_cid, 1, rng.randbytes(32))
        isolation.close_all()  # a fresh node: no warm pool (measuring the task's baseline warmed its own)
        cold = checker_for(_random_address(rng))
        v = cold.check(info, spec)
        if v.decision != "confirm":
            raise RuntimeError(f"honest claim not confirmed: {v.decision}: {v.reason}")
        if not (v.causality or {}).get("checked"):
            raise RuntimeError(f"honest claim confirmed without a causality check: {v.causality}")
        s = v.seconds
        policy = policy_of(spec)
        startup = _startup_s(v.replays)
        per_replay = s["replay"] / max(1, len(v.replays))
        rest = s["total"] - s["fetch"] - s["start"] - s["replay"] - s["eval"]
        out["cost"] = {"train_s": round(train_s, 3), "check_s": s["total"], "fetch_norms_s": s["fetch"],
                       "start_s": s["start"],
                       "replay_s": s["replay"], "replays": len(v.replays), "segments_replayed": v.segments,
                       "replay_startup_s": round(startup, 3), "eval_s": s["eval"], "other_s": round(rest, 3),
                       "segment_train_s": round(train_s / spec.segments, 3), "per_replay_s": round(per_replay, 3),
                       "causality": v.causality}
        out["cost_per_verifier"] = s["total"] / train_s
        warm_checker = checker_for(_random_address(rng))
        out["cost"].update(_warm_pool_cost(warm_checker, spec, honest, v.segments, base,
                                           warm_checker.check_seed(info)))
        out["cost"]["warm"]["fetch_norms_s"] = s["fetch"]
        warm = out["cost"]["warm"]
        out["cost_per_verifier_warm_pool"] = (s["fetch"] + rest + warm["start_s"] + warm["replay_s"]
                                              + warm["eval_s"]) / train_s
        # what every later claim costs a running node: the same checker again, its pools warm and
        # its one-time start-up paid (the first check also asks a fresh interpreter for the
        # capability torch has under the task's kernel pin), another claim id and chain seed
        again = cold.check(_claim_info(honest.manifest, honest.manifest_cid, 2, rng.randbytes(32)), spec)
        if again.decision != "confirm":
            raise RuntimeError(f"honest claim not confirmed on the second check: {again.reason}")
        s2 = again.seconds
        out["cost"]["second_check"] = {k: s2[k] for k in ("total", "fetch", "start", "replay", "eval")}
        out["cost"]["second_check"]["rest"] = round(s2["total"] - sum(s2[k] for k in ("fetch", "start", "replay",
                                                                                      "eval")), 3)
        out["cost_per_verifier_warm"] = s2["total"] / train_s
        out["cost_breakdown_share"] = {k: round(s[k] / train_s, 4) for k in ("fetch", "start", "replay", "eval")}
        out["replay_flops_counted"] = [r.get("flops") for r in v.replays]

        # -- detection: forged runs, membership trials, real-replay confirmation -----------
        norms_checker = checker_for(_random_address(rng))
        honest_norms, _ = norms(norms_checker, honest, base / "norms-honest")
        out["honest_update_norms"] = [round(u, 5) for u in honest_norms]
        out["detection"] = {}
        all_runs: dict[str, list[ForgedRun]] = {}
        for attack in attacks:
            runs = []
            for j in range(runs_per_attack):
                run_seed = 1  # the honest run's: its gain is the forgery's, not another seed's
                hook, forged = _attack_hook(attack, rng, spec.segments)
                res = train(base, store, f"{attack}-{j}", run_seed, spec.steps, spec.segment_steps, hook)
                runs.append(ForgedRun(attack, run_seed, forged, res.manifest_path.parent, res.manifest,
                                      res.manifest_cid, *norms(norms_checker, res, base / f"norms-{attack}-{j}")))
            all_runs[attack] = runs
        for attack, runs in all_runs.items():
            d = detection_trials(runs, trials, rng, policy)
            conf = _confirm(checker_for, spec, runs, d.pop("_examples"), confirm_misses)
            out["detection"][attack] = {**d, "runs": [r.summary() for r in runs], "confirmation": conf}
            out[f"detect_{attack}"] = d["rate"]

        # -- alternatives: other sampling policies on the same forged runs -----------------
        fixed = s["fetch"] + s["eval"] + rest
        s2 = out["cost"]["second_check"]  # a running node: fixed part and per-replay cost of a real check
        warm_fixed = s2["total"] - s2["replay"] - s2["start"]
        warm_per_replay = s2["replay"] / max(1, len(again.segments))
        alts = []
        for r_count, s_count in ALTERNATIVE_POLICIES:
            pol = SamplingPolicy(r_count, s_count)
            rates = {a: round(detection_trials(rs, max(200, trials // 4), rng, pol)["rate"], 4)
                     for a, rs in all_runs.items()}
            n = r_count + s_count
            alts.append({"random": r_count, "suspicious": s_count,
                         "est_cost_per_verifier": round((fixed + s["start"] + n * per_replay) / train_s, 3),
                         "est_cost_warm": round((warm_fixed + s2["start"] + n * warm_per_replay) / train_s, 3),
                         "detection": rates})
        out["alternatives"] = alts

        # -- the adaptive adversary: curves, expected value, the sampling trade-off ---------
        if adversary:
            kit = [adv.Forgery(*adv.kit_family(r.attack, spec.segment_steps), r.forged,
                               r.manifest.evaluation.value, r.norms, r.cosines) for rs in all_runs.values() for r in rs]
            out["adversary"] = adv.run(trials, spec.steps, spec.segment_steps, quick=adversary_quick, extra=kit,
                                       replay_cost=warm_per_replay / train_s,
                                       fixed_cost=(warm_fixed + s2["start"]) / train_s)
            low = out["adversary"]["min_p_adaptive"]
            out["adversary_min_p"] = 1.0 if low is None else low  # None: no forgery gained epsilon
            out["adversary_every_ev_negative"] = out["adversary"]["every_ev_negative"]

        # -- latency: a real devnet ---------------------------------------------------------
        if latency:
            req = {"experiment_dir": template_dir("charlm"), "steps": spec.steps,
                   "segment_steps": spec.segment_steps, "min_improvement": 0.0001}
            out["latency"] = measure_latency(req, honest.manifest_path.parent, store, base, poll_interval)
            out["latency_s"] = out["latency"]["latency_s"]
    out["meets"] = {k: (out[k] <= t if k in ("cost_per_verifier_warm", "latency_s") else out[k] >= t)
                    for k, t in TARGETS.items() if k in out}
    out["bench_seconds"] = round(time.perf_counter() - t_all, 1)
    return out


def table_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, PASS/MISS/-) for every figure."""
    def mark(key):
        return "-" if key not in r["meets"] else ("PASS" if r["meets"][key] else "MISS")

    c = r["cost"]
    rows = [("cost per verifier, fresh node (check / training)", f"{r['cost_per_verifier']:.3f}  ({c['check_s']:.1f}s / "
             f"{c['train_s']:.1f}s)", "(report)", "-"),
            ("  fetch + hash + update norms", f"{c['fetch_norms_s']:.2f}s", "", ""),
            ("  checkpoint 0 rebuilt from the seed (incl. zygote start)", f"{c['start_s']:.2f}s", "", ""),
            (f"  {c['replays']} replay(s) {c['segments_replayed']}", f"{c['replay_s']:.2f}s "
             f"(start-up {c['replay_startup_s']:.2f}s)", "", ""),
            (f"  final evaluation + causality ({(c.get('causality') or {}).get('checked', 0)} cuts)",
             f"{c['eval_s']:.2f}s", "", ""),
            ("  rest (manifest, checks, cleanup)", f"{c['other_s']:.2f}s", "", ""),
            ("cost per verifier, a running node (the same checker's second claim)",
             f"{r['cost_per_verifier_warm']:.3f}  ({c['second_check']['total']:.1f}s: start "
             f"{c['second_check']['start']:.2f}s, replays {c['second_check']['replay']:.2f}s, eval "
             f"{c['second_check']['eval']:.2f}s, rest {c['second_check']['rest']:.2f}s)", "<= 0.25",
             mark("cost_per_verifier_warm")),
            ("cost per verifier, warm sandboxed zygote pool", f"{r['cost_per_verifier_warm_pool']:.3f}  (start "
             f"{c['warm']['start_s']:.2f}s, replays {c['warm']['replay_s']:.2f}s, eval {c['warm']['eval_s']:.2f}s)",
             "(report)", "-")]
    for attack, d in r["detection"].items():
        key = f"detect_{attack}"
        conf = d["confirmation"]
        rows.append((f"detection {attack} (3 verifiers)", f"{d['rate']:.3f}  ({d['detected']}/{d['trials']}; "
                     f"1 verifier {d['rate_one_verifier']:.3f})",
                     ">= 0.95" if key in TARGETS else "(report)", mark(key) if key in TARGETS else "-"))
        rows.append(("  real replays: hits challenged", f"{conf['hits_challenged']}/{conf['hits_checked']}"
                     + (f", misses confirmed {conf['misses_confirmed']}/{conf['misses_checked']}"
                        if conf["misses_checked"] else ""), "all", "PASS" if conf["hits_challenged"] ==
                     conf["hits_checked"] and conf["misses_confirmed"] == conf["misses_checked"] else "MISS"))
    if "adversary" in r:
        a = r["adversary"]
        rows.append(("adaptive adversary: weakest detection, gain >= epsilon", f"{a['min_p_adaptive']:.3f}"
                     if a["min_p_adaptive"] is not None else "-", ">= 0.95", mark("adversary_min_p")))
        rows.append(("adaptive adversary: every cheat's expected value < 0", str(a["every_ev_negative"]), "True",
                     "PASS" if a["every_ev_negative"] else "MISS"))
    if "latency" in r:
        lat = r["latency"]
        rows.append(("verifier latency (reveal -> tx, minus start+replay+eval)", f"{lat['latency_s']:.2f}s  (raw "
                     f"{lat['reveal_to_action_s']:.2f}s - {lat['replay_eval_s']:.2f}s)", "<= 5 s", mark("latency_s")))
    return rows


def print_report(r: dict) -> None:
    print(f"verify_bench: charlm, {r['steps']} steps in {r['segments']} segments of {r['segment_steps']}, "
          f"sampling {r['sampling']}, {r['mode']} mode, {r['verifiers']} verifiers, {r['trials']} trials/attack, "
          f"{r['runs_per_attack']} forged runs/attack")
    rows = table_rows(r)
    w = max(len(x[0]) for x in rows)
    for name, value, target, ok in rows:
        print(f"  {name:{w}}  {value:44}  {target:10} {ok}")
    print("  alternatives (same forged runs; cost estimated from the measured per-replay cost):")
    for a in r["alternatives"]:
        det = "  ".join(f"{k} {v:.3f}" for k, v in a["detection"].items())
        print(f"    random {a['random']} + suspicious {a['suspicious']}: "
              f"cost ~{a['est_cost_per_verifier']:.2f} "
              f"(running node ~{a['est_cost_warm']:.2f})  {det}")
    if "adversary" in r:
        adv.print_section(r["adversary"])
    print(f"  ({r['bench_seconds']:.0f}s)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.verify_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=2000, help="membership trials per attack")
    ap.add_argument("--runs-per-attack", type=int, default=3, help="forged runs trained per attack")
    ap.add_argument("--steps", type=int, default=None, help="budget (default: the template's, 400)")
    ap.add_argument("--segment-steps", type=int, default=None, help="segment length (default: 50)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the trials' random chain seeds")
    ap.add_argument("--poll-interval", type=float, default=1.0, help="the verifier node's polling period")
    ap.add_argument("--attacks", default="forged_jump,data_substitution,spread_small",
                    help="comma-separated attacks of arledger.attacks to train forged runs for")
    ap.add_argument("--no-confirm-misses", action="store_true",
                    help="confirm only detecting trials on real replays, not one missing trial per attack")
    ap.add_argument("--no-latency", action="store_true", help="skip the anvil latency measurement")
    ap.add_argument("--no-adversary", action="store_true", help="skip the adaptive adversary (bench.adversary)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    chosen = tuple(x.strip() for x in a.attacks.split(",") if x.strip())
    unknown = [x for x in chosen if x not in ATTACKS]
    if unknown or not chosen:
        ap.error(f"--attacks: unknown {', '.join(unknown) or '(none given)'} (known: {', '.join(ATTACKS)})")
    res = run(a.trials, a.runs_per_attack, a.steps, a.segment_steps, a.seed, latency=not a.no_latency,
              confirm_misses=not a.no_confirm_misses, poll_interval=a.poll_interval, attacks=chosen,
              adversary=not a.no_adversary)
    if a.json:
        print(json.dumps(res, sort_keys=True, default=str))
    else:
        print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
