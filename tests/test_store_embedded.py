"""EmbeddedStore: round trips, verification on read, limits, atomic writes, open_store specs."""

import os

import pytest

import arstore
from arstore import (
    ArtifactNotFound,
    ArtifactTooLarge,
    CIDMismatch,
    DestinationExists,
    EmbeddedStore,
    InvalidCID,
    InvalidDirectory,
    InvalidStoreSpec,
    KuboStore,
    WrongArtifactKind,
    bytes_cid,
    dir_cid,
    file_cid,
    open_store,
)


def make_tree(root):
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "train.py").write_text("print('hi')\n")
    (root / ".hidden").write_bytes(b"h")
    (root / "sub" / "zero").write_bytes(b"")
    (root / "sub" / "deeper" / "blob.bin").write_bytes(bytes(range(256)) * 2000)  # 2 chunks
    return root


def test_bytes_round_trip(embedded_store):
    cid = embedded_store.add_bytes(b"hello")
    assert cid == bytes_cid(b"hello")
    assert embedded_store.cat(cid) == b"hello"
    assert embedded_store.has(cid)
    embedded_store.pin(cid)


def test_file_round_trip_streamed(embedded_store, tmp_path):
    src = tmp_path / "ckpt.bin"
    src.write_bytes(os.urandom(700_000))
    cid = embedded_store.add_file(src)
    assert cid == file_cid(src)
    out = embedded_store.get_file(cid, tmp_path / "out" / "ckpt.bin")
    assert out.read_bytes() == src.read_bytes()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".part")]
    assert not list((embedded_store.root / "tmp").iterdir())


def test_dir_round_trip(embedded_store, tmp_path):
    src = make_tree(tmp_path / "code")
    cid = embedded_store.add_dir(src)
    assert cid == dir_cid(src)
    out = embedded_store.get_dir(cid, tmp_path / "got")
    assert (out / "sub" / "deeper" / "blob.bin").read_bytes() == (src / "sub" / "deeper" / "blob.bin").read_bytes()
    assert (out / ".hidden").read_bytes() == b"h"
    assert not (out / "empty").exists()  # directories with no file are not part of the tree
    assert dir_cid(out) == cid


def test_tampered_file_detected(embedded_store, tmp_path):
    cid = embedded_store.add_bytes(b"the real weights")
    obj = embedded_store._obj(cid)
    obj.write_bytes(b"the fake weights")
    with pytest.raises(CIDMismatch, match=cid):
        embedded_store.cat(cid)
    with pytest.raises(CIDMismatch, match=cid):
        embedded_store.get_file(cid, tmp_path / "w")
    assert not (tmp_path / "w").exists()  # nothing half-written


def test_tampered_dir_member_detected(embedded_store, tmp_path):
    src = make_tree(tmp_path / "code")
    cid = embedded_store.add_dir(src)
    embedded_store._obj(file_cid(src / "train.py")).write_text("import os; os.system('rm -rf /')\n")
    with pytest.raises(CIDMismatch):
        embedded_store.get_dir(cid, tmp_path / "got")
    assert not (tmp_path / "got").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_tampered_dir_listing_detected(embedded_store, tmp_path):
    src = make_tree(tmp_path / "code")
    cid = embedded_store.add_dir(src)
    extra = embedded_store.add_bytes(b"smuggled")
    listing = embedded_store._dir(cid)
    listing.write_text(listing.read_text().replace('"files": [', '"files": [{"path": "x.py", "cid": "%s", "size": 8},' % extra))
    with pytest.raises(CIDMismatch, match=cid):
        embedded_store.get_dir(cid, tmp_path / "got")


def test_size_limit_before_reading(embedded_store, tmp_path):
    cid = embedded_store.add_bytes(b"x" * 1000)
    with pytest.raises(ArtifactTooLarge, match="1000 bytes > max_size 999"):
        embedded_store.cat(cid, max_size=999)
    with pytest.raises(ArtifactTooLarge):
        embedded_store.get_file(cid, tmp_path / "f", max_size=10)
    assert embedded_store.cat(cid, max_size=1000) == b"x" * 1000
    dcid = embedded_store.add_dir(make_tree(tmp_path / "code"))
    with pytest.raises(ArtifactTooLarge):
        embedded_store.get_dir(dcid, tmp_path / "d", max_size=1000)


def test_missing_and_invalid(embedded_store, tmp_path):
    missing = bytes_cid(b"never stored")
    assert not embedded_store.has(missing)
    with pytest.raises(ArtifactNotFound, match=missing):
        embedded_store.cat(missing)
    with pytest.raises(ArtifactNotFound):
        embedded_store.pin(missing)
    with pytest.raises(InvalidCID, match="not-a-cid"):
        embedded_store.cat("not-a-cid")


def test_kind_mismatch(embedded_store, tmp_path):
    dcid = embedded_store.add_dir(make_tree(tmp_path / "code"))
    fcid = embedded_store.add_bytes(b"f")
    with pytest.raises(WrongArtifactKind, match="directory"):
        embedded_store.cat(dcid)
    with pytest.raises(WrongArtifactKind, match="file"):
        embedded_store.get_dir(fcid, tmp_path / "x")


def test_get_dir_refuses_non_empty_destination(embedded_store, tmp_path):
    dcid = embedded_store.add_dir(make_tree(tmp_path / "code"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep").write_text("mine")
    with pytest.raises(DestinationExists, match="busy"):
        embedded_store.get_dir(dcid, tmp_path / "busy")
    (tmp_path / "emptydest").mkdir()
    assert (embedded_store.get_dir(dcid, tmp_path / "emptydest") / "train.py").exists()


def test_symlink_refused(embedded_store, tmp_path):
    src = make_tree(tmp_path / "code")
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(InvalidDirectory, match="link"):
        embedded_store.add_dir(src)


def test_open_store_specs(tmp_path, monkeypatch):
    monkeypatch.delenv("ARLEDGER_IPFS", raising=False)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "home"))
    s = open_store()
    assert isinstance(s, EmbeddedStore) and s.root == tmp_path / "home" / "store"
    assert open_store(f"embedded:{tmp_path}/x").url == f"embedded:{tmp_path}/x"
    assert open_store("/ip4/127.0.0.1/tcp/5001").url == "http://127.0.0.1:5001"
    monkeypatch.setenv("ARLEDGER_IPFS", "http://127.0.0.1:5009/")
    k = open_store()
    assert isinstance(k, KuboStore) and k.url == "http://127.0.0.1:5009"
    for bad in ("ftp://x", "embedded:", "/ip4/1.2.3.4/udp/1"):
        with pytest.raises(InvalidStoreSpec, match="invalid"):
            open_store(bad)


def test_all_errors_are_store_errors():
    for name in arstore.__all__:
        obj = getattr(arstore, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, arstore.StoreError)
