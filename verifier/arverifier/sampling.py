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
  Segment 0 has no predecessor (score 0): random picks cover it.

The picks are disjoint; ties in the suspicion score break by segment index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eth_abi import encode
from eth_utils import keccak, to_checksum_address


@dataclass(frozen=True)
class SamplingPolicy:
    """How many segments one verifier replays (the TaskSpec may override these)."""

    random_segments: int = 1  # picked from the chain seed
    suspicious_segments: int = 1  # largest relative parameter update


@dataclass(frozen=True)
class Sample:
    segments: tuple[int, ...]  # sorted, distinct
    random: tuple[int, ...]
    suspicious: tuple[int, ...]
    verifier_seed: bytes

    def as_dict(self) -> dict:
        return {"segments": list(self.segments), "random": list(self.random),
                "suspicious": list(self.suspicious), "verifier_seed": "0x" + self.verifier_seed.hex()}


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


def suspicion_scores(update_norms: Sequence[float]) -> list[float]:
    """Per segment: its update over the previous segment's (0 for segment 0)."""
    scores = [0.0]
    for prev, cur in zip(update_norms, update_norms[1:]):
        scores.append(float("inf") if prev == 0 and cur > 0 else (cur / prev if prev else 0.0))
    return scores[:len(update_norms)]


def most_suspicious(update_norms: Sequence[float], count: int) -> list[int]:
    """The ``count`` segments with the highest suspicion score (ties: lower index first)."""
    scores = suspicion_scores(update_norms)
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:max(0, count)]


def sample_segments(claim_id: int, verifier: str, seed: bytes, num_segments: int,
                    update_norms: Sequence[float] | None = None,
                    policy: SamplingPolicy = SamplingPolicy()) -> Sample:
    """The segments ``verifier`` replays for ``claim_id``."""
    if num_segments <= 0:
        raise ValueError("a claim has at least one segment")
    if update_norms is not None and len(update_norms) != num_segments:
        raise ValueError(f"{len(update_norms)} update norms for {num_segments} segments")
    suspicious = most_suspicious(update_norms, policy.suspicious_segments) if update_norms else []
    vseed = verifier_seed(claim_id, verifier, seed)
    rand = random_segments(vseed, num_segments, policy.random_segments, exclude=suspicious)
    return Sample(tuple(sorted(set(rand) | set(suspicious))), tuple(rand), tuple(suspicious), vseed)
