"""KuboStore against a real js-ipfs node: same CIDs as the embedded store, verified reads, failures."""

import hashlib
import time

import pytest

from arstore import (
    CHUNK_SIZE,
    ArtifactNotFound,
    ArtifactTooLarge,
    CIDMismatch,
    InvalidCID,
    KuboStore,
    StoreUnavailable,
    WrongArtifactKind,
    bytes_cid,
    dir_cid,
    file_cid,
)
from arstore.devnode import free_port

pytestmark = pytest.mark.ipfsnode


def det_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible bytes (sha256 counter stream)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed.to_bytes(4, "big") + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:n])


SIZES = {
    "empty": 0,
    "one byte": 1,
    "one chunk": CHUNK_SIZE,
    "one chunk + 1": CHUNK_SIZE + 1,
    "many chunks": 7 * CHUNK_SIZE + 12345,
}


@pytest.mark.parametrize("name", list(SIZES))
def test_same_cid_as_node_and_round_trip(name, kubo_store, embedded_store, tmp_path):
    data = det_bytes(SIZES[name], seed=len(name))
    p = tmp_path / "f"
    p.write_bytes(data)
    cid = kubo_store.add_file(p)
    assert cid == file_cid(p) == bytes_cid(data) == embedded_store.add_bytes(data)
    assert kubo_store.cat(cid) == data
    assert kubo_store.get_file(cid, tmp_path / "back").read_bytes() == data
    assert kubo_store.has(cid)
    kubo_store.pin(cid)


def test_more_than_one_level_of_links(kubo_store, embedded_store, tmp_path):
    # 175 chunks > 174 links per node: the balanced layout gets a second level.
    n = 175 * CHUNK_SIZE + 999
    p = tmp_path / "big"
    with open(p, "wb") as f:  # repeated 1 MiB of distinct blocks keeps generation cheap
        block = det_bytes(1 << 20, seed=7)
        left = n
        k = 0
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece[:-8] + k.to_bytes(8, "big") if len(piece) > 8 else piece)
            left -= len(piece)
            k += 1
    local = file_cid(p)
    assert kubo_store.add_file(p) == local == embedded_store.add_file(p)
    back = kubo_store.get_file(local, tmp_path / "back", max_size=n)
    assert file_cid(back) == local and back.stat().st_size == n


def test_directory_same_cid_and_round_trip(kubo_store, embedded_store, tmp_path):
    src = tmp_path / "code"
    (src / "pkg" / "sub").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "train.py").write_text("print('train')\n")
    (src / "b.txt").write_text("b")
    (src / "a b.txt").write_text("space in name")
    (src / ".env").write_text("x=1")
    (src / "pkg" / "__init__.py").write_bytes(b"")
    (src / "pkg" / "sub" / "data.bin").write_bytes(det_bytes(3 * CHUNK_SIZE + 7))
    cid = kubo_store.add_dir(src)
    assert cid == dir_cid(src) == embedded_store.add_dir(src)
    assert cid.startswith("bafy")
    out = kubo_store.get_dir(cid, tmp_path / "got")
    assert (out / "pkg" / "sub" / "data.bin").read_bytes() == (src / "pkg" / "sub" / "data.bin").read_bytes()
    assert (out / "a b.txt").read_text() == "space in name"
    assert dir_cid(out) == cid
    with pytest.raises(WrongArtifactKind):
        kubo_store.cat(cid)
    with pytest.raises(ArtifactTooLarge):
        kubo_store.get_dir(cid, tmp_path / "small", max_size=100)
    assert not (tmp_path / "small").exists()


def test_size_limit_before_reading(kubo_store, tmp_path):
    cid = kubo_store.add_bytes(det_bytes(5000, seed=3))
    with pytest.raises(ArtifactTooLarge, match="5000 bytes > max_size 4999"):
        kubo_store.cat(cid, max_size=4999)
    with pytest.raises(ArtifactTooLarge):
        kubo_store.get_file(cid, tmp_path / "x", max_size=10)
    assert not (tmp_path / "x").exists()


def test_missing_cid_fails_fast(kubo_store):
    missing = bytes_cid(b"nobody ever added this " + str(time.time()).encode())
    t = time.monotonic()
    assert not kubo_store.has(missing)
    with pytest.raises(ArtifactNotFound, match=missing):
        kubo_store.cat(missing, timeout=60)
    with pytest.raises(ArtifactNotFound):
        kubo_store.pin(missing)
    assert time.monotonic() - t < 15


def test_invalid_cid_text(kubo_store):
    with pytest.raises(InvalidCID, match="Qm"):
        kubo_store.cat("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")


def test_tampered_block_on_node_detected(kubo_store, ipfs_node):
    data = b"original checkpoint bytes " * 10
    cid = kubo_store.add_bytes(data)
    hits = [p for p in (ipfs_node.repo / "blocks").rglob("*") if p.is_file() and p.read_bytes() == data]
    assert len(hits) == 1, "expected the raw block as one file in the node's flatfs blockstore"
    hits[0].write_bytes(b"poisoned checkpoint bytes " * 10)
    with pytest.raises(CIDMismatch, match=cid):
        kubo_store.cat(cid)


def test_unreachable_node_names_url():
    url = f"http://127.0.0.1:{free_port()}"
    store = KuboStore(url)
    with pytest.raises(StoreUnavailable, match=url.replace(".", r"\.")):
        store.add_bytes(b"x")
    with pytest.raises(StoreUnavailable, match="connection refused"):
        store.has(bytes_cid(b"x"))
