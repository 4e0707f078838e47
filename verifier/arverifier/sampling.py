"""Which segments a verifier replays: unpredictable to the trainer, auditable by anyone.

Two kinds of picks (as in Proof-of-Learning):

- **random**: derived from ``keccak256(abi.encode(claimId, verifier, seed))`` where
  ``seed`` is the contract's ``sampleSeed(claimId)``, fixed by chain data after the
  reveal. Each verifier gets its own picks; anyone can recompute them from the chain;
- **suspicious**: the segments whose parameter update grew most against the segment
  before: ``u_i / u_{i-1}`` with ``u_i = ||theta_{i+1} - theta_i|| / ||theta_i||``,
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
  factor is floored at 1 so that a forged segment 2 (large u_2) cannot inflate it;
- **probe** (loss-based): the claim's own ``probe(model, data)`` (an optional
  train.py function, run in the sandbox on every checkpoint) gives the loss on a
  fixed train slice and a fixed validation slice; segment i scores
  ``(val_i - val_{i+1}) - (train_i - train_{i+1})``. A segment trained on validation
  data drops the val loss far more than the train loss (+0.17..0.32 bits/char on
  charlm, honest <= ~0.07), which the update size barely shows (+15 %). When the
  experiment has no ``probe`` (or it fails), those picks become extra random picks,
  so breaking the probe buys a cheater nothing.

With ``suspicion="fused"`` (the TaskSpec default) and probe scores available, the
suspicious picks rank segments by ``max(z_growth, z_probe)``: each signal as a robust
z-score against the claim's own segments (median, 1.4826 x MAD; growth in log), so
ONE pick serves both a forged jump (growth z 4-16) and a validation-trained segment
(probe z 2.4-5.5; honest tops of either signal: z <= ~2) -- measured on charlm, 16
segments (docs/verification.md). Below ``FUSED_MIN_SEGMENTS`` (8) segments a
median/MAD over so few values is noise, and fused suspicion falls back to growth only
(measured: 4 segments of 10 steps, a probe outlier outranked a 3x jump).
``suspicion="growth"``: growth only, as before.

The picks are disjoint (suspicious, then probe, then random); ties in a score break
by segment index.
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
    probe_segments: int = 0  # largest (val drop - train drop) of the loss probe
    suspicion: str = "growth"  # "growth" | "fused" (growth and probe, robust z-scores)

    def __post_init__(self):
        if self.suspicion not in SUSPICION_MODES:
            raise ValueError(f"suspicion: {self.suspicion!r} is not one of {', '.join(SUSPICION_MODES)}")

    @property
    def wants_probe(self) -> bool:
        """Whether the verifier must run the claim's loss probe for these picks."""
        return self.probe_segments > 0 or (self.suspicion == "fused" and self.suspicious_segments > 0)

    def needs_probe(self, num_segments: int) -> bool:
        """``wants_probe`` for a claim of ``num_segments`` (fused needs FUSED_MIN_SEGMENTS)."""
        fused = self.suspicion == "fused" and self.suspicious_segments > 0 and num_segments >= FUSED_MIN_SEGMENTS
        return self.probe_segments > 0 or fused


@dataclass(frozen=True)
class Sample:
    segments: tuple[int, ...]  # sorted, distinct
    random: tuple[int, ...]
    suspicious: tuple[int, ...]
    verifier_seed: bytes
    probe: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {"segments": list(self.segments), "random": list(self.random),
                "suspicious": list(self.suspicious), "probe": list(self.probe),
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


SUSPICION_MODES = ("growth", "fused")
FUSED_MIN_SEGMENTS = 8  # fewer: robust z-scores are noise, fused suspicion uses growth only
SEGMENT0_MARGIN = 1.5  # honest u_0 exceeds the geometric extrapolation by ~20-30 %


def _ratio(num: float, den: float) -> float:
    return float("inf") if den == 0 and num > 0 else (num / den if den else 0.0)


def suspicion_scores(update_norms: Sequence[float]) -> list[float]:
    """Per segment: its update over the previous segment's; segment 0: its update over the
    extrapolation ``1.5 u_1 max(1, u_1 / u_2)`` of the next two (0 with fewer than 3 segments)."""
    u = list(update_norms)
    scores = [0.0]
    if len(u) >= 3 and u[1] > 0 and u[2] > 0:
        scores[0] = _ratio(u[0], SEGMENT0_MARGIN * u[1] * max(1.0, u[1] / u[2]))
    for prev, cur in zip(u, u[1:]):
        scores.append(_ratio(cur, prev))
    return scores[:len(u)]


def _top(scores: Sequence[float], count: int, exclude: Sequence[int] = ()) -> list[int]:
    order = sorted((i for i in range(len(scores)) if i not in exclude), key=lambda i: (-scores[i], i))
    return order[:max(0, count)]


def most_suspicious(update_norms: Sequence[float], count: int) -> list[int]:
    """The ``count`` segments with the highest suspicion score (ties: lower index first)."""
    return _top(suspicion_scores(update_norms), count)


def robust_z(values: Sequence[float]) -> list[float]:
    """(x - median) / (1.4826 MAD) per value; a zero MAD counts as a tiny one."""
    xs = [float(x) for x in values]
    if not xs:
        return []
    med = statistics.median(xs)
    mad = 1.4826 * statistics.median(abs(x - med) for x in xs)
    scale = mad if mad > 0 else 1e-12
    return [(x - med) / scale if math.isfinite(x) else math.inf for x in xs]


def fused_scores(update_norms: Sequence[float], probe: Sequence[float]) -> list[float]:
    """Per segment: max(robust z of log growth, robust z of the probe score)."""
    growth = [math.log(g) if g > 0 else -math.inf if g == 0 else 0.0 for g in suspicion_scores(update_norms)]
    finite = [g if math.isfinite(g) or g > 0 else min((x for x in growth if math.isfinite(x)), default=0.0)
              for g in growth]
    return [max(a, b) for a, b in zip(robust_z(finite), robust_z(probe))]


def probe_scores(probes: Sequence[dict]) -> list[float]:
    """Per segment i: (val_i - val_{i+1}) - (train_i - train_{i+1}) from the N+1 checkpoint probes."""
    return [(a["val"] - b["val"]) - (a["train"] - b["train"]) for a, b in zip(probes, probes[1:])]


def sample_segments(claim_id: int, verifier: str, seed: bytes, num_segments: int,
                    update_norms: Sequence[float] | None = None,
                    policy: SamplingPolicy = SamplingPolicy(),
                    probe: Sequence[float] | None = None) -> Sample:
    """The segments ``verifier`` replays for ``claim_id``.

    ``probe``: the per-segment ``probe_scores``; None (no probe available) turns the
    policy's probe picks into random picks (and fused suspicion into growth only).
    """
    if num_segments <= 0:
        raise ValueError("a claim has at least one segment")
    if update_norms is not None and len(update_norms) != num_segments:
        raise ValueError(f"{len(update_norms)} update norms for {num_segments} segments")
    if probe is not None and len(probe) != num_segments:
        raise ValueError(f"{len(probe)} probe scores for {num_segments} segments")
    if update_norms and probe is not None and policy.suspicion == "fused" and num_segments >= FUSED_MIN_SEGMENTS:
        suspicious = _top(fused_scores(update_norms, probe), policy.suspicious_segments)
    else:
        suspicious = most_suspicious(update_norms, policy.suspicious_segments) if update_norms else []
    probed = _top(probe, policy.probe_segments, exclude=suspicious) if probe is not None else []
    extra_random = policy.probe_segments if probe is None else 0
    vseed = verifier_seed(claim_id, verifier, seed)
    rand = random_segments(vseed, num_segments, policy.random_segments + extra_random,
                           exclude=suspicious + probed)
    return Sample(tuple(sorted(set(rand) | set(suspicious) | set(probed))), tuple(rand), tuple(suspicious),
                  vseed, tuple(probed))
