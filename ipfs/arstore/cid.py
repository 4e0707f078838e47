"""CIDs as this project uses them: CIDv1, sha2-256, raw leaves, 256 KiB chunks, base32 text.

These are Kubo's defaults with ``--cid-version 1 --raw-leaves`` (balanced DAG layout),
so a CID computed here equals the one any IPFS node gives for the same bytes.
The UnixFS hashing itself is done by ``aleph_cid`` (Rust, verified against the node
in tests/test_store_cid_node.py); this module adds the binary forms the chain uses and
strict parsing so that a malformed CID fails with one clear line.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import aleph_cid

from .errors import InvalidCID, InvalidDirectory

CHUNK_SIZE = 262144
"""Chunker ``size-262144``: a file up to this size is one raw block (``bafk…``)."""

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_CODECS = {RAW: "raw", DAG_PB: "dag-pb"}
_READ_BLOCK = 1 << 20
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

MAX_DIR_ENTRIES = 1000
"""Entries per directory; above it nodes may switch to HAMT sharding (different CIDs)."""


# ---------------------------------------------------------------- content -> CID

class CidStream:
    """Incremental CID of a byte stream (same result as adding the whole stream as one file)."""

    def __init__(self) -> None:
        self._h = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
        self.size = 0

    def update(self, data: bytes) -> None:
        if data:
            self._h.update(bytes(data))
            self.size += len(data)

    def finalize(self) -> str:
        return self._h.finalize()


def bytes_cid(data: bytes) -> str:
    """CID of ``data`` as a file, without storing anything."""
    s = CidStream()
    s.update(data)
    return s.finalize()


def file_cid(path: str | os.PathLike[str]) -> str:
    """CID of the file at ``path`` (streamed, constant memory), without storing anything."""
    s = CidStream()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_BLOCK):
            s.update(chunk)
    return s.finalize()


def walk_tree(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Canonical listing of a directory: sorted ``(posix relpath, "file"|"dir")`` pairs.

    Why strict: a directory CID must mean the same tree on every machine, so symlinks
    and special files are refused (they would be followed or dropped differently by
    different tools), and directories with no file below them are left out (the
    reference hasher ignores them; a node would not).
    """
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        raise InvalidDirectory(f"{root}: not a directory")
    out: list[tuple[str, str]] = []

    def visit(d: Path, rel: str) -> bool:
        names = sorted(os.listdir(d), key=lambda n: n.encode("utf-8", "surrogateescape"))
        if len(names) > MAX_DIR_ENTRIES:
            raise InvalidDirectory(f"{d}: {len(names)} entries > {MAX_DIR_ENTRIES} per directory")
        mark = len(out)
        if rel:
            out.append((rel, "dir"))
        any_file = False
        for name in names:
            p = d / name
            r = f"{rel}/{name}" if rel else name
            if p.is_symlink():
                raise InvalidDirectory(f"{p}: symlinks are not allowed in a stored directory")
            if p.is_dir():
                any_file |= visit(p, r)
            elif p.is_file():
                out.append((r, "file"))
                any_file = True
            else:
                raise InvalidDirectory(f"{p}: not a regular file or directory")
        if rel and not any_file:
            del out[mark:]
        return any_file

    visit(root, "")
    return out


def dir_cid(path: str | os.PathLike[str]) -> str:
    """UnixFS root CID of a directory tree (as the node computes it), without storing anything."""
    walk_tree(path)  # refuses what could hash differently elsewhere
    return aleph_cid.hash_folder(os.fspath(path), cid_version=1, follow_symlinks=False)


# ---------------------------------------------------------------- text <-> binary

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(b: bytes, i: int, what: str) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise InvalidCID(f"truncated {what} in CID bytes {b.hex()}")
        byte = b[i]
        n |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return n, i
        shift += 7


def _b58decode(s: str) -> bytes:
    n = 0
    for ch in s:
        k = _B58.find(ch)
        if k < 0:
            raise ValueError(ch)
        n = n * 58 + k
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\0" * (len(s) - len(s.lstrip("1"))) + raw


def cid_from_bytes(b: bytes) -> str:
    """Binary CID (as carried on chain) -> base32 text; validates codec and hash."""
    b = bytes(b)
    version, i = _read_varint(b, 0, "version")
    if version != 1:
        raise InvalidCID(f"CID bytes {b.hex()[:80]}: version {version}, only CIDv1 is accepted")
    codec, i = _read_varint(b, i, "codec")
    if codec not in _CODECS:
        raise InvalidCID(f"CID bytes {b.hex()[:80]}: codec 0x{codec:x}, only raw and dag-pb are accepted")
    hcode, i = _read_varint(b, i, "hash code")
    hlen, i = _read_varint(b, i, "hash length")
    if hcode != SHA2_256 or hlen != 32:
        raise InvalidCID(f"CID bytes {b.hex()[:80]}: hash 0x{hcode:x}/{hlen}, only sha2-256 is accepted")
    if len(b) - i != 32:
        raise InvalidCID(f"CID bytes {b.hex()[:80]}: digest is {len(b) - i} bytes, expected 32")
    return "b" + base64.b32encode(b).decode().lower().rstrip("=")


def cid_to_bytes(cid: str) -> bytes:
    """CID text (base32 ``b…``, or base58btc ``z…`` as some nodes answer) -> binary CID."""
    if not isinstance(cid, str) or len(cid) < 2:
        raise InvalidCID(f"invalid CID {cid!r}: empty or not text")
    prefix, body = cid[0], cid[1:]
    try:
        if prefix in "bB":
            body = body.upper() if prefix == "B" else body
            raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        elif prefix == "z":
            raw = _b58decode(body)
        elif cid.startswith("Qm"):
            raise InvalidCID(f"invalid CID {cid!r}: CIDv0, only CIDv1 is accepted")
        else:
            raise InvalidCID(f"invalid CID {cid!r}: unknown multibase prefix {prefix!r}")
    except (ValueError, base64.binascii.Error) as e:
        if isinstance(e, InvalidCID):
            raise
        raise InvalidCID(f"invalid CID {cid!r}: not valid base32/base58") from None
    try:
        cid_from_bytes(raw)
    except InvalidCID as e:
        raise InvalidCID(f"invalid CID {cid!r}: {str(e).split(': ', 1)[-1]}") from None
    return raw


def normalize_cid(cid: str) -> str:
    """Canonical base32 text of a CID; raises InvalidCID naming the text otherwise."""
    return cid_from_bytes(cid_to_bytes(cid))


def cid_codec(cid: str) -> str:
    """``"raw"`` (one-block file) or ``"dag-pb"`` (multi-block file or directory)."""
    b = cid_to_bytes(cid)
    _, i = _read_varint(b, 0, "version")
    codec, _ = _read_varint(b, i, "codec")
    return _CODECS[codec]


def digest_to_cid(digest32: bytes) -> str:
    """sha256 digest -> CID of a one-block file (``CIDv1(raw, sha2-256)``), as rebuilt from chain."""
    digest32 = bytes(digest32)
    if len(digest32) != 32:
        raise InvalidCID(f"digest must be 32 bytes, got {len(digest32)}")
    return cid_from_bytes(_varint(1) + _varint(RAW) + bytes([SHA2_256, 32]) + digest32)


def cid_to_digest(cid: str) -> bytes:
    """CIDv1 raw sha2-256 -> its 32-byte digest (what the chain stores); refuses dag-pb CIDs."""
    b = cid_to_bytes(cid)
    if cid_codec(cid) != "raw":
        raise InvalidCID(f"CID {cid} is dag-pb (a multi-block file or directory): no single sha256 digest")
    return b[-32:]


def sha256_cid_check(data: bytes, cid: str) -> bool:
    """Fast check for one-block CIDs: the digest is plain sha256 of the bytes."""
    return hashlib.sha256(data).digest() == cid_to_digest(cid)
