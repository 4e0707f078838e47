"""CID helpers: text/binary forms, digests, strict parsing (no node needed)."""

import hashlib

import pytest

from arstore import (
    CHUNK_SIZE,
    InvalidCID,
    bytes_cid,
    cid_codec,
    cid_from_bytes,
    cid_to_bytes,
    cid_to_digest,
    digest_to_cid,
    file_cid,
    normalize_cid,
)

# Known answers from an IPFS node (`ipfs add --cid-version 1 --raw-leaves`).
EMPTY = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
ONE_A = "bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm"


def test_known_small_cids():
    assert bytes_cid(b"") == EMPTY
    assert bytes_cid(b"a") == ONE_A


def test_one_chunk_is_raw_and_one_more_byte_is_dag_pb():
    assert cid_codec(bytes_cid(b"x" * CHUNK_SIZE)) == "raw"
    assert cid_codec(bytes_cid(b"x" * (CHUNK_SIZE + 1))) == "dag-pb"


def test_digest_round_trip_matches_sha256():
    data = b"task spec"
    cid = bytes_cid(data)
    assert cid_to_digest(cid) == hashlib.sha256(data).digest()
    assert digest_to_cid(hashlib.sha256(data).digest()) == cid


def test_binary_form_round_trip():
    for cid in (EMPTY, bytes_cid(b"y" * (CHUNK_SIZE + 5))):
        b = cid_to_bytes(cid)
        assert b[0] == 1 and len(b) == 36
        assert cid_from_bytes(b) == cid


def test_base58_text_is_normalized_to_base32():
    # js-ipfs answers some commands in base58btc; the same CID must come out.
    assert normalize_cid("zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW") == EMPTY


def test_file_cid_equals_bytes_cid(tmp_path):
    data = bytes(range(256)) * 3000  # 768000 bytes: 3 chunks
    p = tmp_path / "f"
    p.write_bytes(data)
    assert file_cid(p) == bytes_cid(data)


@pytest.mark.parametrize("text,reason", [
    ("", "empty"),
    ("hello", "unknown multibase"),
    ("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "CIDv0"),
    ("b!!!!", "not valid"),
    (EMPTY[:-8], "digest is"),
])
def test_invalid_cid_text_names_the_text(text, reason):
    with pytest.raises(InvalidCID, match=reason) as e:
        normalize_cid(text)
    assert repr(text) in str(e.value)


def test_dag_pb_cid_has_no_digest():
    with pytest.raises(InvalidCID, match="dag-pb"):
        cid_to_digest(bytes_cid(b"z" * (CHUNK_SIZE + 1)))


def test_wrong_hash_function_rejected():
    blake = bytes([1, 0x55, 0xB2, 0x20]) + b"\0" * 32  # multihash code 0xb220 (blake2b-256), truncated form
    with pytest.raises(InvalidCID):
        cid_from_bytes(blake)
    with pytest.raises(InvalidCID, match="32 bytes"):
        digest_to_cid(b"\0" * 31)
