"""Which segments a verifier replays: unpredictable to the trainer, auditable by anyone,
and ranked only by what the verifier computes itself.

Two kinds of picks (as in Proof-of-Learning):

- **random**: derived from ``keccak256(abi.encode(claimId, verifier, seed))`` where
  ``seed`` is the contract's ``sampleSeed(claimId)``, fixed by chain data after the
  reveal. Each verifier gets its own picks; anyone can recompute them from the chain;
- **suspicious**: the segments whose parameter update grew most against the segment
  before, or stands out most over both neighbours (``suspicion_scores``):
  ``u_i / u_{i-1}`` with ``u_i = ||theta_{i+1} - theta_i|| / ||theta_i||``,
  measured by the verifier itself from the published checkpoints (cheap: no
  training). Honest updates shrink or stay flat as training settles (ratios <= ~1);
  a segment whose end state comes from more training than claimed jumps above its
  predecessor (ratio 2-3 for 4x the steps), and one trained on other data moves
  further than its neighbours. The raw update size is not the score: the first
  segments of any run move the weights most, and would hide a late forgery.
  Segment 0 has no predecessor: it is scored against 1.5x the geometric
  extrapolation of the next two updates, ``u_0 / (1.5 u_1 max(1, u_1 / u_2))``:
  honest decay steepens towards the random init (the plain extrapolation gives ~1.2
  on charlm: the margin keeps it below 1), a 3x jump there scores ~2-2.4. The decay
  factor is floored at 1 so that a forged segment 2 (large u_2) cannot inflate it.
  A segment that stands over both neighbours (``u_i / sqrt(u_{i-1} u_{i+1})``, the bump)
  scores too: early, fast natural decay hides a bigger update from growth alone;
- **turn** (part of the suspicious score from ``TURN_MIN_SEGMENTS`` segments): the drop
  of the cosine between consecutive updates after a segment (``turn_scores``): a segment
  trained on other data is partly undone by the next one, so the cosine falls while the
  update sizes barely move. Growth-and-bump and turn are fused as robust z-scores
  against the claim's own segments (``fused_scores``), both computed by the verifier.

**Nothing claim code computes ranks anything.** The checkpoints are bytes the verifier
hashes and measures; the loss probe that used to rank segments (the model's loss on
fixed slices, fused with growth) ran the claim's own model, so the claim chose its
answers: a probe pointing at a decoy took detection of a forged segment from 1.00 to
0.19 (issue "A budget the claim cannot stretch"). It is gone from sampling; a spec's
``probe_segments`` are now extra random picks and ``suspicion: "fused"`` means growth.

**Spread across verifiers** (``covered``): the segments that earlier confirmations of
the same claim already listed (their ``ClaimConfirmed`` events) are skipped while any
are left, so the second verifier takes the second most suspicious segment and random
picks elsewhere, and three verifiers cover three suspicious segments, not one three
times. Anyone can recompute a verifier's picks from the chain seed, its address and
the confirmations before its own.

Ties in a score break by segment index.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from eth_abi import encode
from eth_utils import keccak, to_checksum_address


@dataclass(frozen=True)
class SamplingPolicy:
    """How many segments one verifier replays (the TaskSpec may override these)."""

    random_segments: int = 1  # picked from the chain seed
    suspicious_segments: int = 1  # largest growth of the parameter update
    probe_segments: int = 0  # older specs: picks now made at random (no claim-computed probe ranks)
    suspicion: str = "growth"  # "growth"; "fused" (older specs) means growth too

    def __post_init__(self):
        if self.suspicion not in SUSPICION_MODES:
            raise ValueError(f"suspicion: {self.suspicion!r} is not one of {', '.join(SUSPICION_MODES)}")

    @property
    def random_picks(self) -> int:
        return self.random_segments + self.probe_segments


@dataclass(frozen=True)
class Sample:
    segments: tuple[int, ...]  # sorted, distinct
    random: tuple[int, ...]
    suspicious: tuple[int, ...]
    verifier_seed: bytes
    covered: tuple[int, ...] = ()  # what earlier confirmations listed (skipped while others are left)

    def as_dict(self) -> dict:
        return {"segments": list(self.segments), "random": list(self.random),
                "suspicious": list(self.suspicious), "covered": list(self.covered),
                "verifier_seed": "0x" + self.verifier_seed.hex()}


def verifier_seed(claim_id: int, verifier: str, seed: bytes) -> bytes:
    """keccak256(abi.encode(uint256 claimId, address verifier, bytes32 seed))."""
    if len(seed) != 32:
        raise ValueError(f"sample seed must be 32 bytes, got {len(seed)}")
    return keccak(encode(["uint256", "address", "bytes32"],
                         [claim_id, to_checksum_address(verifier), seed]))


def random_segments(vseed: bytes, num_segments: int, count: int,
                    exclude: Sequence[int] = ()) -> list[int]:
    """``count`` distinct segments: keccak(vseed, j) mod N for j = 0, 1, ... skipping repeats."""
    pool = num_segments - len(set(exclude))
    count = max(0, min(count, pool))
    picked: list[int] = []
    j = 0
    while len(picked) < count:
        idx = int.from_bytes(keccak(vseed + j.to_bytes(32, "big")), "big") % num_segments
        if idx not in picked and idx not in exclude:
            picked.append(idx)
        j += 1
    return picked


SUSPICION_MODES = ("growth", "fused")  # "fused": older specs; growth only now
SEGMENT0_MARGIN = 1.5  # honest u_0 exceeds the geometric extrapolation by ~20-30 %


def _ratio(num: float, den: float) -> float:
    return float("inf") if den == 0 and num > 0 else (num / den if den else 0.0)


def suspicion_scores(update_norms: Sequence[float]) -> list[float]:
    """Per segment i >= 1: the larger of its growth ``u_i / u_{i-1}`` and its bump over both
    neighbours ``u_i / sqrt(u_{i-1} u_{i+1})`` (the last segment: growth only); segment 0: its
    update over the extrapolation ``1.5 u_1 max(1, u_1 / u_2)`` of the next two (0 with fewer
    than 3 segments).

    Why the bump: early in a run updates decay fast, so a forged segment 1 can grow 1.3x and
    still be smaller than segment 0 (growth 0.88: hidden; measured, charlm 16 x 25, +12 steps
    in segment 1). Honest decay is smooth, so it is not above the geometric mean of its
    neighbours (honest bumps <= 1.03 on charlm), and that forgery's bump is 1.22.
    """
    u = list(update_norms)
    scores = [0.0]
    if len(u) >= 3 and u[1] > 0 and u[2] > 0:
        scores[0] = _ratio(u[0], SEGMENT0_MARGIN * u[1] * max(1.0, u[1] / u[2]))
    for i in range(1, len(u)):
        score = _ratio(u[i], u[i - 1])
        if i + 1 < len(u) and u[i - 1] > 0 and u[i + 1] > 0:
            score = max(score, u[i] / math.sqrt(u[i - 1] * u[i + 1]))
        scores.append(score)
    return scores[:len(u)]


TURN_MIN_SEGMENTS = 8  # fewer: a median/MAD over so few values is noise; growth and bump only


def turn_scores(cosines: Sequence[float], num_segments: int) -> list[float]:
    """Per segment i: how sharply training turned after it, ``gm(c_{i-1}, c_{i+1}) / c_i`` with
    ``c_i = cos(Δ_i, Δ_{i+1})`` (the geometric mean of the neighbouring cosines that exist; the
    last segment has no turn after it, and segment 0's is not scored: 1. Training from the
    random init turns sharply after its first segment in every run: an honest 2.1 on charlm.)

    Why: a segment trained on other data moves the weights somewhere the next segment, back on
    the task's data, partly undoes: the cosine between their updates drops (measured, charlm
    16 x 25: 0.30 -> 0.15 after a validation-trained segment 5, 0.26 -> 0.09 after segment 10;
    honest turns <= 1.15, those two 1.7 and 2.5), while the update's size barely changes.
    """
    c = [float(x) for x in cosines]
    out = []
    for i in range(num_segments):
        if i == 0 or i >= len(c):
            out.append(1.0)
            continue
        nb = [c[j] for j in (i - 1, i + 1) if 0 <= j < len(c) and c[j] > 0]
        ref = math.exp(sum(math.log(x) for x in nb) / len(nb)) if nb else 0.0
        out.append(min(1e6, ref / max(c[i], 1e-6)) if ref > 0 else 1.0)
    return out


def robust_z(values: Sequence[float]) -> list[float]:
    """(x - median) / (1.4826 MAD) per value; a zero MAD counts as a tiny one."""
    xs = [float(x) for x in values]
    med = statistics.median(xs)
    mad = 1.4826 * statistics.median(abs(x - med) for x in xs)
    return [(x - med) / (mad if mad > 0 else 1e-12) for x in xs]


def fused_scores(update_norms: Sequence[float], cosines: Sequence[float] | None) -> list[float]:
    """Growth-and-bump alone, or, with the update cosines and >= TURN_MIN_SEGMENTS segments, per
    segment the larger robust z-score (against the claim's own segments, in log) of
    growth-and-bump and of the turn: two signals on one scale, both computed by the verifier."""
    g = suspicion_scores(update_norms)
    if cosines is None or len(update_norms) < TURN_MIN_SEGMENTS:
        return g
    t = turn_scores(cosines, len(update_norms))
    lg = [math.log(x) if x > 0 and math.isfinite(x) else (50.0 if x > 0 else 0.0) for x in g]
    lt = [math.log(x) if x > 0 else 0.0 for x in t]
    return [max(a, b) for a, b in zip(robust_z(lg), robust_z(lt))]


def _top(scores: Sequence[float], count: int, exclude: Sequence[int] = ()) -> list[int]:
    order = sorted((i for i in range(len(scores)) if i not in exclude), key=lambda i: (-scores[i], i))
    return order[:max(0, count)]


def most_suspicious(update_norms: Sequence[float], count: int) -> list[int]:
    """The ``count`` segments with the highest suspicion score (ties: lower index first)."""
    return _top(suspicion_scores(update_norms), count)


def sample_segments(claim_id: int, verifier: str, seed: bytes, num_segments: int,
                    update_norms: Sequence[float] | None = None,
                    policy: SamplingPolicy = SamplingPolicy(),
                    covered: Sequence[int] = (), cosines: Sequence[float] | None = None) -> Sample:
    """The segments ``verifier`` replays for ``claim_id``.

    ``covered``: segments earlier confirmations of this claim listed; the suspicious
    picks take the most suspicious segments outside it, the random picks avoid it,
    each as long as enough segments are left (then they fall back on all of them).
    ``cosines``: ``cos(Δ_i, Δ_{i+1})`` of consecutive updates (N - 1 of them), for the turn signal.
    """
    if num_segments <= 0:
        raise ValueError("a claim has at least one segment")
    if update_norms is not None and len(update_norms) != num_segments:
        raise ValueError(f"{len(update_norms)} update norms for {num_segments} segments")
    if cosines is not None and len(cosines) != max(0, num_segments - 1):
        raise ValueError(f"{len(cosines)} update cosines for {num_segments} segments")
    done = sorted({int(c) for c in covered if 0 <= int(c) < num_segments})
    suspicious: list[int] = []
    if update_norms:
        scores = fused_scores(update_norms, cosines)
        suspicious = _top(scores, policy.suspicious_segments, exclude=done)
        if len(suspicious) < policy.suspicious_segments:  # everything is covered: rank them all again
            suspicious += _top(scores, policy.suspicious_segments - len(suspicious), exclude=suspicious)
    vseed = verifier_seed(claim_id, verifier, seed)
    want = policy.random_picks
    rand = random_segments(vseed, num_segments, want, exclude=suspicious + done)
    if len(rand) < want:  # fewer uncovered segments than picks: the rest from the covered ones
        rand += random_segments(vseed, num_segments, want - len(rand), exclude=suspicious + rand)
    return Sample(tuple(sorted(set(rand) | set(suspicious))), tuple(rand), tuple(suspicious), vseed, tuple(done))
