"""Verify one claim (or one dispute) off chain: the verdict a verifier acts on.

The order is cheapest first, and the first failure decides:

1. the manifest: fetched by the digest on chain, validated (schema, size, Merkle root);
2. its consistency with the claim (task, trainer, code CID, root, segment count, loss)
   and with the TaskSpec (budget, segment length, data CIDs, metric, environment,
   and the run's own work report against the budget);
3. the environment: a verifier whose CPU cannot run the task's kernel set
   (``arledger.execution.kernels``), or, in ``exact`` mode, whose environment under that
   set differs from the claim's, abstains instead of accusing anyone;
4. every checkpoint: available and hashing to its h_i (also gives the update norms
   for the suspicious-segment picks); the static budget counted here: the code's size
   and checkpoint 0's parameters (over: an ``Artifact`` challenge of boundary 0);
5. the start: checkpoint 0 rebuilt from the seed by the claim's own ``build()`` in the
   sandbox, FLOPs counted (``rebuild_start``): another state, or a build() over the
   start-up budget, is an ``Artifact`` challenge of boundary 0;
6. the task harness's verdict on the model (``arledger.protocol.replay.assess``): the
   final weights evaluated (the claim's model predicts on held-out inputs in a
   sandboxed process that has the training split only, the harness validates and
   scores the outputs in another) with the causality check on inputs spliced after
   cuts drawn from this verifier's own seed (``check_seed``); on a sealed task, on the
   claim's round's shard instead of the public split, and the incumbent's stated loss on
   that shard measured too (a wrong one: ``FinalEvaluation`` segment 1);
7. the sampled segments (``arverifier.sampling``: growth measured here, spread around
   what earlier confirmations listed), replayed in the sandbox from checkpoint i with
   every step's FLOPs counted and the request's CPU time measured by the kernel: a
   segment that does not reproduce, or reproduces from more work than the budget, is a
   ``Segment`` challenge.

Nothing here sends a transaction; ``arverifier.node`` turns the verdict into one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arledger import checkpoint, manifest as mf, merkle, sealed, taskspec
from arledger.chain.deployment import arledger_home
from arledger.errors import (
    ArledgerError,
    ArtifactMismatch as _ArtifactMismatch,
    IncumbentUnavailable,
    ManifestError,
    SealedError,
    TimeBaseUnavailable,
)
from arledger.execution import isolation, kernels
from arledger.execution.executors import Executor
from arledger.execution.sandbox import Sandbox
from arledger.micro import fmt, to_micro
from arledger.protocol import timebase
from arledger.protocol.replay import (
    ArtifactSource,
    assess,
    evaluate_final,
    rebuild_start,
    Replay,
    replay_segment,
    ReplayError,
)
from arledger.runner import budget, determinism
from arstore.errors import StoreError
from arverifier.sampling import sample_segments, SamplingPolicy

log = logging.getLogger("arverify.check")

ZERO32 = b"\x00" * 32
# The observed value of a FinalEvaluation challenge whose outputs the harness rejected or that
# failed the causality check: no loss at all; the largest value the contract accepts (uint64 max),
# which no claimed loss reaches (1.8e13 in micro-units).
NO_VALID_LOSS = (2**64 - 1).to_bytes(32, "big")


@dataclass(frozen=True)
class ClaimInfo:
    """What the chain says about a claim (from `claim` and its `ClaimRevealed` event)."""

    claim_id: int
    task_id: int
    trainer: str
    parent_id: int
    code_cid: str
    manifest_digest: bytes
    merkle_root: bytes
    num_segments: int
    claimed_loss: int  # micro-units
    seed: bytes
    covered: tuple[int, ...] = ()  # segments earlier confirmations listed (sampling spreads around them)
    sealed: "SealedInfo | None" = None  # a sealed task's claim, once scored (None: an open task)


@dataclass(frozen=True)
class SealedInfo:
    """What the chain says of a scored claim of a sealed task: its round's opened shard and the
    incumbent it was scored against (0: the baseline) with the loss the trainer stated for it."""

    round: int
    shard_cid: str
    shard_digest: bytes
    incumbent_id: int
    incumbent_loss: int
    incumbent_manifest_digest: bytes | None


@dataclass
class Challenge:
    kind: str  # Segment | Artifact | FinalEvaluation
    segment: int = 0
    claimed_start: bytes = ZERO32
    claimed_end: bytes = ZERO32
    start_proof: list[bytes] = field(default_factory=list)
    end_proof: list[bytes] = field(default_factory=list)
    observed: bytes = ZERO32


@dataclass
class Verdict:
    claim_id: int
    decision: str  # confirm | challenge | abstain
    reason: str
    segments: list[int] = field(default_factory=list)
    measured_loss: int | None = None
    challenge: Challenge | None = None
    replays: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    causality: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.challenge:
            c = d["challenge"]
            for k in ("claimed_start", "claimed_end", "observed"):
                c[k] = "0x" + c[k].hex()
            c["start_proof"] = ["0x" + p.hex() for p in c["start_proof"]]
            c["end_proof"] = ["0x" + p.hex() for p in c["end_proof"]]
        return d


def _loss(micro: int) -> str:
    """A loss as people read it (docs/configuration.md: numbers in output)."""
    return fmt(micro)


class _Decided(Exception):
    """Internal: a step reached the verdict early."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict


def loss_to_bytes32(loss_micro: int) -> bytes:
    return int(loss_micro).to_bytes(32, "big")


def _hex_to_bytes(h: str) -> bytes:
    return bytes.fromhex(h[2:] if h.startswith("0x") else h)


class ClaimChecker:
    """Checks claims with one store, one sandbox policy and one verifier identity."""

    def __init__(self, store: Any, verifier: str, *, workdir: Path | None = None,
                 sandbox_backend: str = "auto", keep_workdirs: bool = False, use_pool: bool = True,
                 home: Path | None = None):
        """``home``: where this machine's timings of each task's baseline are kept
        (``arledger.protocol.timebase``) [default: $ARLEDGER_HOME]."""
        self.store = store
        self.home = Path(home) if home else arledger_home()
        self.verifier = verifier
        self.workdir = (Path(workdir) if workdir else Path(tempfile.gettempdir()) / "arverify-work").resolve()
        self.sandbox_backend = sandbox_backend
        self.keep = keep_workdirs
        self.use_pool = use_pool
        self._executors: dict[tuple, Executor] = {}

    # -- the pieces ------------------------------------------------------------------

    def sandbox(self, spec: taskspec.TaskSpec) -> Sandbox:
        return isolation.for_task(spec, self.sandbox_backend).sandbox()

    @staticmethod
    def environment_of(m: mf.Manifest, spec: taskspec.TaskSpec) -> dict:
        """The environment this verifier's sandboxed runs have for this claim: the task's kernel
        pin and the capability torch gets under it here (asked of a fresh interpreter, cached)."""
        return determinism.environment(int(m.environment["threads"]), kernels=spec.cpu_kernels)

    @staticmethod
    def kernel_abstention(spec: taskspec.TaskSpec, mine: dict) -> str:
        """Why this verifier cannot run the task's kernel set ("" if it can)."""
        pin = spec.cpu_kernels
        if pin is not None and mine["cpu_capability"] != kernels.expected_capability(pin):
            return (f"this CPU cannot run the task's kernel set {pin!r} (torch runs {mine['cpu_capability']} "
                    f"under its switches)")
        return ""

    def budget_problems(self, src: ArtifactSource, m: mf.Manifest, spec: taskspec.TaskSpec) -> list[str]:
        """The static budget, counted here: the code's size and checkpoint 0's parameters."""
        params = budget.param_count(checkpoint.model_params(src.checkpoint(0).read_bytes()))
        return spec.work_budget.static_problems(params, budget.code_bytes(src.code_dir()))

    def check_seed(self, info: ClaimInfo) -> bytes:
        """This verifier's seed for the causality check: from the chain's seed, its address and
        the claim, so no two verifiers perturb the same way and claim code cannot know how."""
        return hashlib.sha256(b"arverify/causality/" + bytes(info.seed) + self.verifier.lower().encode()
                              + info.claim_id.to_bytes(8, "big")).digest()

    def fetch_manifest(self, info: ClaimInfo) -> mf.Manifest:
        return mf.fetch(self.store, info.manifest_digest)

    @staticmethod
    def inconsistencies(m: mf.Manifest, info: ClaimInfo, spec: taskspec.TaskSpec) -> list[str]:
        out = []
        if m.task_id != info.task_id:
            out.append(f"task_id: manifest says {m.task_id}, claim is for task {info.task_id}")
        if (m.trainer or "").lower() != info.trainer.lower():
            out.append(f"trainer: manifest names {m.trainer}, claim was revealed by {info.trainer}")
        if m.code_cid != info.code_cid:
            out.append(f"code_cid: manifest has {m.code_cid}, claim has {info.code_cid}")
        if _hex_to_bytes(m.merkle_root) != info.merkle_root:
            out.append(f"merkle_root: manifest has {m.merkle_root}, claim has 0x{info.merkle_root.hex()}")
        if m.segments != info.num_segments:
            out.append(f"segments: manifest has {m.segments}, claim has {info.num_segments}")
        if info.sealed is None and m.evaluation.value_micro != info.claimed_loss:  # sealed: scored on the shard
            out.append(f"loss: manifest reports {_loss(m.evaluation.value_micro)}, claim says {_loss(info.claimed_loss)}")
        return out + taskspec.problems_with(m, spec)

    def update_norms(self, src: ArtifactSource, m: mf.Manifest) -> list[float]:
        """||θ_{i+1} − θ_i|| / ||θ_i|| per segment, from the checkpoints (no training)."""
        return self.update_stats(src, m)[0]

    def update_stats(self, src: ArtifactSource, m: mf.Manifest) -> tuple[list[float], list[float]]:
        """Per segment the relative update ``u_i`` and, per pair of consecutive segments, the cosine
        ``c_i = cos(Δ_i, Δ_{i+1})`` of their updates ``Δ_i = θ_{i+1} − θ_i``: both measured here
        from the published checkpoints, the signals the suspicious picks rank by (no training)."""
        norms: list[float] = []
        cosines: list[float] = []
        prev = checkpoint.model_params(src.checkpoint(0).read_bytes())
        prev_delta: dict | None = None
        for i in range(1, m.segments + 1):
            cur = checkpoint.model_params(src.checkpoint(i).read_bytes())
            if cur.keys() != prev.keys() or any(cur[k].shape != prev[k].shape for k in cur):
                norms.append(math.inf)
                delta = None
            else:
                delta = {k: cur[k].double() - prev[k].double() for k in cur}
                num = math.sqrt(sum(float((d ** 2).sum()) for d in delta.values()))
                den = math.sqrt(sum(float((prev[k].double() ** 2).sum()) for k in cur)) or 1.0
                norms.append(num / den)
            if i >= 2:
                cosines.append(_cosine(prev_delta, delta))
            prev, prev_delta = cur, delta
        return norms, cosines

    def start_verdict(self, r: Replay) -> str:
        """"" if checkpoint 0 is what the claim's build() makes from its seed within the start-up
        budget, else why not. A build() that fails in the sandbox is a start that is not the seed's."""
        try:
            res = rebuild_start(r)
        except ReplayError as exc:
            return f"checkpoint 0 could not be rebuilt from the seed: {exc}"
        return "" if res.ok else f"checkpoint 0: {res.detail}"

    def segment_challenge(self, m: mf.Manifest, i: int, observed: bytes) -> Challenge:
        leaves = mf.leaf_hashes(m.boundaries)
        return Challenge("Segment", i, leaves[i], leaves[i + 1], merkle.merkle_proof(leaves, i),
                         merkle.merkle_proof(leaves, i + 1), observed)

    def executor(self, spec: taskspec.TaskSpec, role: str = "claim") -> Executor:
        """Where claim code (``role="claim"``) or the task's harness (``"harness"``) runs: this
        process's sandboxed zygote pool for the task's policy and the role
        (``arledger.execution.isolation.executor``, the one the trainer's runs and the task's
        baseline use too: its start-up is paid once per process, not per checker or request),
        or one sandboxed process per request when ``use_pool`` is off. Never the same pool for
        both roles: whatever a claim's child could do to its zygote cannot reach the process
        that scores it."""
        iso = isolation.for_task(spec, self.sandbox_backend)
        if self.use_pool:
            return isolation.executor(iso, role)
        key = (role, iso)
        if key not in self._executors:
            self._executors[key] = iso.sandbox().executor()
        return self._executors[key]

    def _timing(self, spec: taskspec.TaskSpec) -> timebase.TimeBaseRequest:
        return timebase.TimeBaseRequest(spec, self.store, self.executor(spec, "claim"), self.home)

    def time_base(self, spec: taskspec.TaskSpec) -> budget.TimeBase | None:
        """The task's baseline timed on this machine, in this checker's sandbox (None for an older
        task without a time budget); ``TimeBaseUnavailable`` where it cannot be timed here."""
        if spec.work_budget.time_ratio is None:
            return None
        return timebase.local_time_base(self._timing(spec))

    def replay_of(self, m: mf.Manifest, spec: taskspec.TaskSpec, src: ArtifactSource) -> Replay:
        threads = int(m.environment["threads"])
        return Replay(m, src, self.executor(spec, "claim"), self.executor(spec, "harness"), threads, m.seed,
                      spec.mode, spec.threshold, spec.sandbox_limits(), self.environment_of(m, spec),
                      budget=spec.work_budget, time_base=self.time_base(spec),
                      base_now=lambda: timebase.time_now(self._timing(spec)))

    def close(self) -> None:
        """Stop this checker's own executors; the process's pools stay warm for the other checkers
        and runs here (``isolation.close_all`` stops them, as the process's exit does)."""
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()

    # -- a claim ---------------------------------------------------------------------

    def check(self, info: ClaimInfo, spec: taskspec.TaskSpec) -> Verdict:
        t0 = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix=f"claim{info.claim_id}-", dir=self._workroot()))
        try:
            verdict = self._check(info, spec, work)
        except _Decided as d:
            verdict = d.verdict
        except TimeBaseUnavailable as exc:  # the task's baseline, not the claim: judge nothing
            verdict = Verdict(info.claim_id, "abstain", str(exc))
        finally:
            if not self.keep:
                shutil.rmtree(work, ignore_errors=True)
        verdict.seconds["total"] = round(time.perf_counter() - t0, 3)
        return verdict

    def _workroot(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    def _check(self, info: ClaimInfo, spec: taskspec.TaskSpec, work: Path) -> Verdict:
        cid = info.claim_id

        def challenge(reason: str, ch: Challenge) -> _Decided:
            return _Decided(Verdict(cid, "challenge", reason, challenge=ch))

        try:
            m = self.fetch_manifest(info)
        except StoreError as exc:
            raise challenge(f"manifest unavailable: {exc}", Challenge("Artifact", 0))
        except ManifestError as exc:
            raise challenge(f"manifest invalid: {exc}", Challenge("Artifact", 0))
        problems = self.inconsistencies(m, info, spec)
        if problems:
            raise challenge("manifest inconsistent: " + "; ".join(problems), Challenge("Artifact", 0))

        mine = self.environment_of(m, spec)
        cannot = self.kernel_abstention(spec, mine)
        if cannot:
            return Verdict(cid, "abstain", cannot)
        diffs = determinism.differences(m.environment, mine)
        if spec.mode == "exact" and diffs:
            return Verdict(cid, "abstain", f"environment differs from the claim's: {', '.join(diffs)}")

        src = ArtifactSource(m, work, store=self.store)
        t = time.perf_counter()
        try:
            src.code_dir()
            src.all_paths()
            src.harness_dir()
            norms, cosines = self.update_stats(src, m)
            over = self.budget_problems(src, m, spec)
        except _ArtifactMismatch as exc:
            raise challenge(str(exc), Challenge("Artifact", exc.index))
        except StoreError as exc:
            raise challenge(f"artifact unavailable: {exc}", Challenge("Artifact", _boundary_of(exc, m)))
        if over:  # the code or the model is larger than the task allows: an artifact the task refuses
            raise challenge("budget: " + "; ".join(over), Challenge("Artifact", 0))
        fetch_s = time.perf_counter() - t

        policy = policy_of(spec)
        r = self.replay_of(m, spec, src)
        t = time.perf_counter()
        start = self.start_verdict(r)  # checkpoint 0 is build(seed), and build() stayed in budget
        if start:
            raise challenge(start, Challenge("Artifact", 0))
        start_s = time.perf_counter() - t
        t = time.perf_counter()
        judge = self.shard_judge(info, spec, work) if info.sealed else None
        try:  # the harness's evaluation, causality included (two harness requests, one predict)
            weights = src.weights()
            a = (assess(r, weights, self.check_seed(info), probe=False) if judge is None
                 else _Assessed(judge.evaluate(src, weights, m.seed, self.check_seed(info))))
        except _ArtifactMismatch as exc:
            raise challenge(str(exc), Challenge("Artifact", exc.index))
        except StoreError as exc:
            raise challenge(f"final weights unavailable: {exc}", Challenge("Artifact", _boundary_of(exc, m)))
        except ReplayError as exc:
            raise challenge(f"final evaluation failed: {exc}", Challenge("FinalEvaluation", 0, observed=NO_VALID_LOSS))
        ev = a.evaluation
        if not ev.ok:
            raise challenge(f"final evaluation: {ev.problem}", Challenge("FinalEvaluation", 0, observed=NO_VALID_LOSS))
        measured = to_micro(ev.metrics[spec.experiment["metric"]])
        if not _losses_agree(measured, info.claimed_loss, spec):
            raise challenge(f"final evaluation gives {_loss(measured)}, claim says {_loss(info.claimed_loss)}",
                            Challenge("FinalEvaluation", 0, observed=loss_to_bytes32(measured)))
        if judge is not None:
            try:
                wrong = self.incumbent_problem(info, spec, judge)
            except IncumbentUnavailable as exc:  # a store's fault, not the trainer's: no accusation
                return Verdict(cid, "abstain", f"{exc}")
            if wrong:
                raise challenge(wrong[0], Challenge("FinalEvaluation", 1, observed=loss_to_bytes32(wrong[1])))
        eval_s = time.perf_counter() - t

        sample = sample_segments(cid, self.verifier, info.seed, m.segments, norms, policy, covered=info.covered,
                                 cosines=cosines)
        replays = []
        t = time.perf_counter()
        for i in sample.segments:
            try:
                res = replay_segment(r, i)
            except _ArtifactMismatch as exc:
                raise challenge(str(exc), Challenge("Artifact", exc.index))
            except ReplayError as exc:
                replays.append({"segment": i, "status": "failed", "detail": str(exc)})
                v = Verdict(cid, "challenge", f"segment {i} failed to replay: {exc}",
                            challenge=self.segment_challenge(m, i, ZERO32), replays=replays)
                raise _Decided(v)
            replays.append(res.to_dict())
            if res.status == "environment_differs":
                return Verdict(cid, "abstain", f"segment {i}: environment differs", replays=replays)
            if res.status == "artifact_mismatch":
                raise challenge(res.detail, Challenge("Artifact", i))
            if res.status == "over_budget":  # the claimed bits, from more work than allowed: no valid state
                v = Verdict(cid, "challenge", f"segment {i}: {res.detail}",
                            challenge=self.segment_challenge(m, i, ZERO32), replays=replays)
                raise _Decided(v)
            if not res.ok:
                observed = _hex_to_bytes(res.produced_hash) if res.produced_hash else ZERO32
                v = Verdict(cid, "challenge", f"segment {i} does not reproduce: produced {res.produced_hash}, "
                            f"claimed {res.expected_hash}" + (f", distance {res.distance:.3g}" if res.distance else ""),
                            challenge=self.segment_challenge(m, i, observed), replays=replays)
                raise _Decided(v)
        replay_s = time.perf_counter() - t
        return Verdict(cid, "confirm", f"{len(sample.segments)} segment(s) reproduce; loss {_loss(measured)} confirmed",
                       segments=list(sample.segments), measured_loss=measured, replays=replays,
                       seconds={"fetch": round(fetch_s, 3), "start": round(start_s, 3),
                                "replay": round(replay_s, 3), "eval": round(eval_s, 3)},
                       causality=ev.causality)

    # -- a sealed claim --------------------------------------------------------------

    def shard_judge(self, info: ClaimInfo, spec: taskspec.TaskSpec, work: Path) -> sealed.ShardJudge:
        """Evaluation on the claim's round's shard (fetched by its CID, checked against the digest
        the contract proved), through this checker's sandboxed executors."""
        s = info.sealed
        shard = sealed.fetch_checked(self.store, s.shard_cid, s.shard_digest, work / f"shard-{s.round:04d}.bin")
        return sealed.ShardJudge(spec, shard, self.executor(spec, "claim"), self.executor(spec, "harness"),
                                 self.store, work / "sealed")

    def incumbent_problem(self, info: ClaimInfo, spec: taskspec.TaskSpec,
                          judge: sealed.ShardJudge) -> tuple[str, int] | None:
        """(why, measured) when the incumbent's loss on the shard is not what the trainer stated."""
        s = info.sealed
        try:
            m = mf.fetch(self.store, s.incumbent_manifest_digest) if s.incumbent_id else None
        except (StoreError, ManifestError) as exc:
            raise IncumbentUnavailable(f"the incumbent's manifest: {exc}") from None
        # this verifier's own causality cuts; sealed.NO_VALID_LOSS where its model fails on the shard
        measured = judge.incumbent_loss(m, hashlib.sha256(b"incumbent/" + self.check_seed(info)).digest())
        if _losses_agree(measured, s.incumbent_loss, spec):
            return None
        who = f"claim {s.incumbent_id}" if s.incumbent_id else "the baseline"
        return (f"the incumbent ({who}) scores {_loss(measured)} on the shard, the claim says "
                f"{_loss(s.incumbent_loss)}"), measured

    # -- a dispute -------------------------------------------------------------------

    def judge(self, info: ClaimInfo, spec: taskspec.TaskSpec, kind: str, segment: int) -> tuple[str, str]:
        """How this verifier votes on a dispute: ('uphold'|'dismiss'|'abstain', reason)."""
        work = Path(tempfile.mkdtemp(prefix=f"dispute{info.claim_id}-", dir=self._workroot()))
        try:
            return self._judge(info, spec, kind, segment, work)
        except TimeBaseUnavailable as exc:  # the task's baseline, not the claim: no vote either way
            return "abstain", str(exc)
        finally:
            if not self.keep:
                shutil.rmtree(work, ignore_errors=True)

    def _judge(self, info, spec, kind, segment, work) -> tuple[str, str]:
        try:
            m = self.fetch_manifest(info)
        except (StoreError, ManifestError) as exc:
            return "uphold", f"manifest unusable: {exc}"
        problems = self.inconsistencies(m, info, spec)
        if problems:
            return "uphold", "; ".join(problems)
        mine = self.environment_of(m, spec)
        cannot = self.kernel_abstention(spec, mine)
        diffs = determinism.differences(m.environment, mine)
        if kind != "Artifact" and (cannot or (spec.mode == "exact" and diffs)):
            return "abstain", cannot or f"environment differs: {', '.join(diffs)}"
        src = ArtifactSource(m, work, store=self.store)
        try:
            src.code_dir()
            src.all_paths()
            src.harness_dir()
            if kind == "Artifact":
                for i in range(m.segments + 1):
                    src.checkpoint(i)
                src.weights()
                over = self.budget_problems(src, m, spec)
                if over:
                    return "uphold", "budget: " + "; ".join(over)
                if cannot or (spec.mode == "exact" and diffs):  # the start's bits are only comparable here
                    return "abstain", "every artifact is available; the start cannot be rebuilt here: " + (
                        cannot or f"environment differs: {', '.join(diffs)}")
                start = self.start_verdict(self.replay_of(m, spec, src))
                if start:
                    return "uphold", start
                return "dismiss", "every artifact is available, within budget, and checkpoint 0 is the seed's"
            r = self.replay_of(m, spec, src)
            if kind == "Segment":
                res = replay_segment(r, segment)
                if res.status == "environment_differs":
                    return "abstain", "environment differs"
                return ("dismiss", f"segment {segment} reproduces") if res.ok else (
                    "uphold", f"segment {segment}: {res.status}")
            if info.sealed is not None:
                try:
                    judge = self.shard_judge(info, spec, work)
                except (StoreError, SealedError) as exc:  # the sponsor's shard, not the trainer's artifact
                    return "abstain", f"the round's shard is unavailable here: {exc}"
                if segment == 1:
                    try:
                        wrong = self.incumbent_problem(info, spec, judge)
                    except IncumbentUnavailable as exc:  # never uphold against the trainer for a store
                        return "abstain", str(exc)
                    return ("uphold", wrong[0]) if wrong else ("dismiss", "the incumbent's loss on the shard matches")
                ev = judge.evaluate(src, src.weights(), m.seed, self.check_seed(info))
            else:
                ev = evaluate_final(r, self.check_seed(info))  # the voter's own cuts, not the challenger's
            if not ev.ok:
                return "uphold", f"final evaluation: {ev.problem}"
            measured = to_micro(ev.metrics[spec.experiment["metric"]])
            if _losses_agree(measured, info.claimed_loss, spec):
                return "dismiss", f"final loss {_loss(measured)} matches the claim"
            return "uphold", f"final loss {_loss(measured)} differs from the claimed {_loss(info.claimed_loss)}"
        except _ArtifactMismatch as exc:
            return "uphold", str(exc)
        except StoreError as exc:
            return "uphold", f"artifact unavailable: {exc}"
        except ReplayError as exc:
            return "uphold", f"replay failed: {exc}"


@dataclass(frozen=True)
class _Assessed:
    """An evaluation on a shard, in the shape ``assess`` answers (no probe)."""

    evaluation: Any


def policy_of(spec: taskspec.TaskSpec) -> SamplingPolicy:
    """The TaskSpec's sampling (``probe_segments`` and ``suspicion`` are optional, and only
    older specs have them: probe picks are made at random now, and suspicion is growth)."""
    smp = spec.sampling
    return SamplingPolicy(int(smp["random_segments"]), int(smp["suspicious_segments"]),
                          int(smp.get("probe_segments", 0)), str(smp.get("suspicion", "growth")))


def _losses_agree(measured: int, claimed: int, spec: taskspec.TaskSpec) -> bool:
    if spec.mode == "exact":
        return measured == claimed
    # tolerance mode: the evaluation of near-identical weights may move in the 4th digit
    return abs(measured - claimed) <= max(1000, claimed // 1000)


def _cosine(a: dict | None, b: dict | None) -> float:
    """cos(a, b) of two updates (0 when either is missing or zero: a turn no score can rank)."""
    if a is None or b is None or a.keys() != b.keys():
        return 0.0
    dot = sum(float((a[k] * b[k]).sum()) for k in a)
    na = math.sqrt(sum(float((a[k] ** 2).sum()) for k in a))
    nb = math.sqrt(sum(float((b[k] ** 2).sum()) for k in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def _boundary_of(exc: StoreError, m: mf.Manifest) -> int:
    text = str(exc)
    for b in m.boundaries:
        if b.checkpoint_cid in text:
            return b.index
    return 0


__all__ = ["ClaimChecker", "ClaimInfo", "Challenge", "SealedInfo", "Verdict", "ArledgerError"]
