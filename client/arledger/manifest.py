"""The run manifest: one JSON document (one IPFS block) that a claim points to.

Why canonical bytes: the manifest CID goes on chain (as its sha256 digest), so the
same run must always serialize to the same bytes: keys sorted, no whitespace, ASCII,
and no floats (metrics are micro-unit integers, timings milliseconds).

Loading validates, in this order, and raises ``ManifestError`` naming the field as a
JSON pointer: size (<= 256 KiB), JSON syntax, the JSON Schema
(``schemas/manifest.schema.json``), then consistency (boundary count vs
steps/segment_steps, indices and steps in order, the Merkle root over (i, h_i)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arledger import jsondoc
from arledger.errors import ManifestError
from arledger.files import atomic_write
from arledger.jsondoc import canonical_bytes  # noqa: F401 - part of this module's API
from arledger.merkle import merkle_proof, merkle_root
from arledger.micro import from_micro
from arstore import cid_from_bytes, digest_to_cid
from arstore.errors import StoreError

SCHEMA_VERSION = 2
MAX_BYTES = jsondoc.MAX_BLOCK_BYTES


@dataclass(frozen=True)
class Boundary:
    """Checkpoint i, taken after ``step`` optimizer steps; ``state_hash`` = 0x sha256(file)."""

    index: int
    step: int
    checkpoint_cid: str
    state_hash: str


@dataclass(frozen=True)
class Evaluation:
    """The primary metric and every reported metric, as micro-unit integers."""

    metric: str
    value_micro: int
    metrics_micro: dict[str, int] = field(default_factory=dict)

    @property
    def value(self) -> float:
        return from_micro(self.value_micro)


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    task_id: int | None
    parent: int | None
    trainer: str | None
    code_cid: str
    harness_cid: str  # the task harness that computed ``evaluation``
    train_splits: tuple[str, ...]  # the datasets train.py was handed; the rest is held out
    experiment: dict[str, str]
    hypothesis: str
    notes: str
    seed: int
    steps: int
    segment_steps: int
    datasets: dict[str, str]
    environment: dict[str, Any]
    boundaries: tuple[Boundary, ...]
    merkle_root: str
    final_weights_cid: str
    evaluation: Evaluation
    timings: dict[str, int]
    work: dict[str, int] = field(default_factory=dict)  # what the trainer counted (runner.budget)

    @property
    def segments(self) -> int:
        return len(self.boundaries) - 1

    def state_hash_bytes(self, i: int) -> bytes:
        return bytes.fromhex(self.boundaries[i].state_hash[2:])

    def merkle_proof(self, i: int) -> list[bytes]:
        """Proof of boundary i's (i, h_i) leaf against ``merkle_root`` (for a dispute)."""
        return merkle_proof(leaf_hashes(self.boundaries), i)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["boundaries"] = [asdict(b) for b in self.boundaries]
        if not d["work"]:
            del d["work"]  # a manifest from before work was counted keeps its bytes
        return d

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        d = dict(d)
        d["boundaries"] = tuple(Boundary(**b) for b in d["boundaries"])
        d["train_splits"] = tuple(d["train_splits"])
        d["evaluation"] = Evaluation(**d["evaluation"])
        return cls(**d)


def schema() -> dict[str, Any]:
    return jsondoc.schema_file("manifest")


def leaf_hashes(boundaries) -> list[bytes]:
    return [bytes.fromhex(b.state_hash[2:]) for b in boundaries]


def compute_merkle_root(boundaries) -> str:
    return "0x" + merkle_root(leaf_hashes(boundaries)).hex()


def validate_dict(d: Any) -> Manifest:
    """Schema + consistency checks of a parsed manifest; returns the typed Manifest."""
    problem = jsondoc.first_schema_error(d, schema())
    if problem:
        raise ManifestError(problem)
    steps, k = d["steps"], d["segment_steps"]
    if steps % k:
        raise ManifestError(f"/segment_steps: {k} does not divide steps {steps}")
    expected = steps // k + 1
    if len(d["boundaries"]) != expected:
        raise ManifestError(f"/boundaries: {len(d['boundaries'])} entries, expected steps/segment_steps+1 = {expected}")
    for i, b in enumerate(d["boundaries"]):
        if b["index"] != i:
            raise ManifestError(f"/boundaries/{i}/index: {b['index']} out of order, expected {i}")
        if b["step"] != i * k:
            raise ManifestError(f"/boundaries/{i}/step: {b['step']}, expected {i * k}")
    missing = [s for s in d["train_splits"] if s not in d["datasets"]]
    if missing or len(d["train_splits"]) >= len(d["datasets"]):
        raise ManifestError(f"/train_splits: must name datasets and leave at least one held out (got {d['train_splits']})")
    if d["evaluation"]["metric"] != d["experiment"]["metric"]:
        raise ManifestError("/evaluation/metric: differs from /experiment/metric")
    m = Manifest.from_dict(d)
    root = compute_merkle_root(m.boundaries)
    if root != m.merkle_root:
        raise ManifestError(f"/merkle_root: {m.merkle_root} does not match the boundaries' root {root}")
    return m


def loads(data: bytes, source: str = "manifest") -> Manifest:
    """Parse and validate manifest bytes (the only way a manifest enters the program)."""
    d = jsondoc.parse_block(data, source, ManifestError)
    try:
        return validate_dict(d)
    except ManifestError as exc:
        raise ManifestError(f"{source}: {exc}") from None


def load(path: Path | str) -> Manifest:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc
    if size > MAX_BYTES:
        raise ManifestError(f"{path}: {size} bytes exceeds the {MAX_BYTES}-byte limit (one IPFS block)")
    return loads(path.read_bytes(), str(path))


def fetch(store: Any, ref: str | bytes, cache: Path | None = None) -> Manifest:
    """The manifest a CID (or the 32-byte sha256 the chain stores) names, fetched and checked
    against it by the store: the one way a manifest comes from the network. ``cache``: a
    directory of ``<cid>.json`` copies (each re-checked against its CID before it is used).
    Raises ``ManifestError`` (malformed) or ``arstore.errors.StoreError`` (not to be had)."""
    cid = ref if isinstance(ref, str) else str(digest_to_cid(ref))
    path = Path(cache) / f"{cid}.json" if cache else None
    if path is not None and path.is_file():
        data = path.read_bytes()
        if str(cid_from_bytes(data)) == cid:
            return loads(data, f"manifest {cid}")
    data = bytes(store.cat(cid, max_size=MAX_BYTES))
    m = loads(data, f"manifest {cid}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    return m


def fetch_or_why(store: Any, ref: str | bytes, cache: Path | None = None) -> tuple[Manifest | None, str | None]:
    """``fetch``, for a reader to whom an unavailable or malformed manifest is part of the answer:
    (manifest, None), or (None, why)."""
    try:
        return fetch(store, ref, cache), None
    except (ManifestError, StoreError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def dumps(m: Manifest) -> bytes:
    """Canonical bytes, validated (so a writer can never publish what a reader rejects)."""
    data = m.to_bytes()
    loads(data)
    return data
