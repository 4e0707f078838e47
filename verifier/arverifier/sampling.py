"""Which segments a verifier replays: unpredictable to the trainer, auditable by anyone.

Two kinds of picks (as in Proof-of-Learning):

- **random**: derived from ``keccak256(abi.encode(claimId, verifier, seed))`` where
  ``seed`` is the contract's ``sampleSeed(claimId)``, fixed by chain data after the
  reveal. Each verifier gets its own picks; anyone can recompute them from the chain;
- **suspicious**: the segments with the largest parameter update
  ``||theta_{i+1} - theta_i|| / ||theta_i||`` measured by the verifier itself from the
  published checkpoints (cheap: no training). A segment whose end state was swapped
  in from a longer run moves the weights further than honest training does, so it
  tops this list whatever the seed.

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


def most_suspicious(update_norms: Sequence[float], count: int) -> list[int]:
    """The ``count`` segments with the largest relative update (ties: lower index first)."""
    order = sorted(range(len(update_norms)), key=lambda i: (-update_norms[i], i))
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
