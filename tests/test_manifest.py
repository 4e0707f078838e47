"""Manifest validation: canonical bytes, and every rejection names the offending field."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from arledger import manifest as mf
from arledger.errors import ManifestError

CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HARNESS_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def _hash(i: int) -> str:
    return "0x" + hashlib.sha256(f"state {i}".encode()).hexdigest()


def valid_dict(segments: int = 3, k: int = 10) -> dict:
    bounds = [mf.Boundary(i, i * k, CID, _hash(i)) for i in range(segments + 1)]
    return {
        "schema_version": 2, "task_id": 1, "parent": None, "trainer": "0x" + "ab" * 20, "code_cid": CID,
        "harness_cid": HARNESS_CID, "train_splits": ["train"],
        "experiment": {"name": "digits", "metric": "val_ce"}, "hypothesis": "h", "notes": "",
        "seed": 1, "steps": segments * k, "segment_steps": k, "datasets": {"train": CID, "val": CID},
        "environment": {"python": "3.11.7", "python_impl": "cpython", "torch": "2.13.0+cpu", "platform": "linux",
                        "machine": "x86_64", "device": "cpu", "threads": 1, "deterministic": {"tf32": False}},
        "boundaries": [b.__dict__ for b in bounds], "merkle_root": mf.compute_merkle_root(bounds),
        "final_weights_cid": CID,
        "evaluation": {"metric": "val_ce", "value_micro": 312345, "metrics_micro": {"val_ce": 312345}},
        "timings": {"train_ms": 10},
    }


def test_valid_manifest_round_trips_to_identical_canonical_bytes():
    data = mf.canonical_bytes(valid_dict())
    m = mf.loads(data)
    assert m.segments == 3 and m.evaluation.value == pytest.approx(0.312345)
    assert m.harness_cid == HARNESS_CID and m.train_splits == ("train",)
    assert mf.dumps(m) == data
    assert b": " not in data and b", " not in data  # no whitespace between tokens
    assert list(json.loads(data)) == sorted(json.loads(data))  # keys sorted


@pytest.mark.parametrize(
    "mutate, pointer",
    [
        (lambda d: d.pop("seed"), "/: 'seed' is a required property"),
        (lambda d: d.__setitem__("steps", "30"), "/steps"),
        (lambda d: d["evaluation"].__setitem__("value_micro", 0.31), "/evaluation/value_micro"),
        (lambda d: d["boundaries"][2].__setitem__("state_hash", "0x12"), "/boundaries/2/state_hash"),
        (lambda d: d.__setitem__("trainer", "alice"), "/trainer"),
        (lambda d: d.__setitem__("extra", 1), "/: Additional properties"),
        (lambda d: d["boundaries"].pop(), "/boundaries: 3 entries, expected"),
        (lambda d: d.__setitem__("segment_steps", 7), "/segment_steps: 7 does not divide"),
        (lambda d: d["boundaries"][1].__setitem__("index", 2), "/boundaries/1/index"),
        (lambda d: d["boundaries"][3].__setitem__("step", 31), "/boundaries/3/step"),
        (lambda d: d.__setitem__("merkle_root", "0x" + "00" * 32), "/merkle_root"),
        (lambda d: d["evaluation"].__setitem__("metric", "acc"), "/evaluation/metric"),
        (lambda d: d.__setitem__("schema_version", 1), "/schema_version"),
        (lambda d: d.pop("harness_cid"), "/: 'harness_cid' is a required property"),
        (lambda d: d.__setitem__("harness_cid", "not-a-cid"), "/harness_cid"),
        (lambda d: d.pop("train_splits"), "/: 'train_splits' is a required property"),
        (lambda d: d.__setitem__("train_splits", []), "/train_splits"),
        (lambda d: d.__setitem__("train_splits", ["test"]), "/train_splits: must name datasets"),
        (lambda d: d.__setitem__("train_splits", ["train", "val"]), "/train_splits: must name datasets and leave"),
    ],
)
def test_rejection_names_the_field(mutate, pointer):
    d = valid_dict()
    mutate(d)
    with pytest.raises(ManifestError) as err:
        mf.loads(mf.canonical_bytes(d))
    assert pointer in str(err.value)


def test_tampered_boundary_hash_breaks_the_merkle_root():
    d = valid_dict()
    d["boundaries"][1]["state_hash"] = _hash(99)
    with pytest.raises(ManifestError, match="/merkle_root"):
        mf.loads(mf.canonical_bytes(d))


def test_oversized_manifest_is_rejected_before_parsing(tmp_path):
    d = valid_dict()
    data = mf.canonical_bytes(d)
    big = data[:-1] + b"," + b'"pad":"' + b"x" * mf.MAX_BYTES + b'"}'
    with pytest.raises(ManifestError, match="exceeds the 262144-byte limit"):
        mf.loads(big)
    p = tmp_path / "manifest.json"
    p.write_bytes(big)
    with pytest.raises(ManifestError, match=str(p)):
        mf.load(p)


def test_malformed_json_is_a_manifest_error():
    with pytest.raises(ManifestError, match="not valid JSON"):
        mf.loads(b"{not json")


def test_text_fields_are_bounded():
    d = copy.deepcopy(valid_dict())
    d["notes"] = "n" * 20000
    with pytest.raises(ManifestError, match="/notes"):
        mf.loads(mf.canonical_bytes(d))


def test_both_ends_of_a_segment_prove_against_the_root():
    from arledger.merkle import verify

    m = mf.loads(mf.canonical_bytes(valid_dict(segments=4)))
    root = bytes.fromhex(m.merkle_root[2:])
    for i in (2, 3):
        assert verify(root, i, m.state_hash_bytes(i), m.merkle_proof(i))
    assert not verify(root, 3, m.state_hash_bytes(2), m.merkle_proof(3))
