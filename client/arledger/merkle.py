"""The checkpoint Merkle tree: the ONE Python implementation (see docs/merkle.md).

A claim's Merkle root commits to every segment-boundary state hash ``h_i``
(i = 0..N), so a dispute can name one segment and prove both of its ends against the
root stored on chain. The layout must match ``TrainingLedger.leafHash`` and
OpenZeppelin's ``MerkleProof`` exactly; ``tests/vectors/merkle.json`` pins it and is
checked by both the Python and the Hardhat tests.

Construction:
- leaf(i, h) = keccak256(keccak256(abi.encode(uint256 i, bytes32 h))) — OpenZeppelin's
  "standard" double hash, so a leaf can never be mistaken for an inner node;
- leaves stay in boundary order (not sorted); each level pairs neighbours (0,1), (2,3)...
  and hashes each pair sorted: keccak256(min(a, b) ++ max(a, b)) (OZ's commutative hash);
- an odd last node is promoted unchanged to the next level (never paired with itself);
- a proof lists the siblings bottom-up, skipping levels where the node was promoted.
"""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from arledger.errors import MerkleError

HASH_BYTES = 32


def _check_hash(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_BYTES:
        got = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise MerkleError(f"{what} must be {HASH_BYTES} bytes, got {got}")
    return bytes(value)


def leaf(index: int, state_hash: bytes) -> bytes:
    """The leaf of boundary ``index`` with state hash ``state_hash`` (= contract ``leafHash``)."""
    if not isinstance(index, int) or index < 0 or index >= 2**256:
        raise MerkleError(f"index must be a uint256, got {index!r}")
    h = _check_hash(state_hash, f"state hash {index}")
    return keccak(keccak(abi_encode(["uint256", "bytes32"], [index, h])))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative pair hash: keccak256 of the two nodes in sorted order."""
    return keccak(a + b) if a <= b else keccak(b + a)


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, root level (one node) last."""
    if not hashes:
        raise MerkleError("a Merkle tree needs at least one state hash")
    level = [leaf(i, h) for i, h in enumerate(hashes)]
    levels = [level]
    while len(level) > 1:
        nxt = [hash_pair(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # odd node promoted unchanged
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(hashes: list[bytes]) -> bytes:
    """Root over the boundary state hashes ``hashes[i] = h_i``, i = 0..N."""
    return _levels(hashes)[-1][0]


def merkle_proof(hashes: list[bytes], index: int) -> list[bytes]:
    """Siblings (bottom-up) proving boundary ``index`` against ``merkle_root(hashes)``."""
    levels = _levels(hashes)
    if not isinstance(index, int) or not 0 <= index < len(hashes):
        raise MerkleError(f"index {index!r} out of range for {len(hashes)} state hashes")
    proof = []
    position = index
    for level in levels[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        position //= 2
    return proof


def verify(root: bytes, index: int, state_hash: bytes, proof: list[bytes]) -> bool:
    """Whether ``(index, state_hash)`` is proven against ``root`` (= OZ ``MerkleProof.verify``)."""
    computed = leaf(index, state_hash)
    for i, sibling in enumerate(proof):
        computed = hash_pair(computed, _check_hash(sibling, f"proof element {i}"))
    return computed == _check_hash(root, "root")
