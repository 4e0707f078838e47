"""EmbeddedStore: a content-addressed directory on local disk (the default store).

Layout under ``root``::

    objects/<last 2 chars of CID>/<CID>   whole file bytes (a file's CID, any size)
    dirs/<CID>.json                       a stored directory: {"format": 1, "files": [{path, cid, size}]}

Whole files rather than blocks: reads are plain file copies, and the CID (computed by
the same hasher the node's CIDs were checked against) ties them to the network form.
Writes go to a temp file and are renamed into place, so a crash never leaves a partial
object under its CID. Nothing is ever evicted, so ``pin`` only checks presence.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .base import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, ArtifactStore, atomic_dir, atomic_file, safe_join
from .cid import CidStream, dir_cid, normalize_cid, walk_tree
from .errors import ArtifactNotFound, ArtifactTooLarge, CIDMismatch, StoreError, WrongArtifactKind

_BLOCK = 1 << 20
_DIR_FORMAT = 1


class EmbeddedStore(ArtifactStore):
    """Artifacts as files under ``root``; same CIDs as an IPFS node for the same bytes."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()
        self.url = f"embedded:{self.root}"
        for sub in ("objects", "dirs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ paths
    def _obj(self, cid: str) -> Path:
        return self.root / "objects" / cid[-2:] / cid

    def _dir(self, cid: str) -> Path:
        return self.root / "dirs" / f"{cid}.json"

    # ------------------------------------------------------------ writes
    def add_bytes(self, data: bytes) -> str:
        s = CidStream()
        s.update(data)
        cid = s.finalize()
        if not self._obj(cid).is_file():
            with atomic_file(self._obj(cid)) as (_, f):
                f.write(data)
        return cid

    def add_file(self, path: str | os.PathLike[str]) -> str:
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: not a regular file")
        # Hash while copying into the store's temp area, then rename under the CID:
        # one read of the source, and the stored bytes are exactly the hashed bytes.
        s = CidStream()
        fd, tmp = tempfile.mkstemp(prefix="add.", suffix=".part", dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(_BLOCK):
                    s.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            cid = s.finalize()
            dest = self._obj(cid)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return cid

    def add_dir(self, path: str | os.PathLike[str]) -> str:
        path = Path(path)
        entries = walk_tree(path)
        files = []
        for rel, kind in entries:
            if kind == "file":
                p = path / rel
                files.append({"path": rel, "cid": self.add_file(p), "size": p.stat().st_size})
        cid = dir_cid(path)
        with atomic_file(self._dir(cid)) as (_, f):
            f.write(json.dumps({"format": _DIR_FORMAT, "files": files}, indent=1, sort_keys=True).encode())
        return cid

    # ------------------------------------------------------------ reads
    def _file_or_raise(self, cid: str) -> Path:
        cid = normalize_cid(cid)
        obj = self._obj(cid)
        if obj.is_file():
            return obj
        if self._dir(cid).is_file():
            raise WrongArtifactKind(f"{cid} is a directory in {self.url}; use get_dir")
        raise ArtifactNotFound(cid, self.url)

    def cat(self, cid: str, *, max_size: int = DEFAULT_MAX_SIZE, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        cid = normalize_cid(cid)
        obj = self._file_or_raise(cid)
        size = obj.stat().st_size
        if size > max_size:
            raise ArtifactTooLarge(cid, max_size, size)
        with open(obj, "rb") as f:
            data = f.read(max_size + 1)
        if len(data) > max_size:
            raise ArtifactTooLarge(cid, max_size, len(data))
        s = CidStream()
        s.update(data)
        got = s.finalize()
        if got != cid:
            raise CIDMismatch(cid, got, self.url)
        return data

    def _copy_verified(self, cid: str, obj: Path, out, budget: int) -> int:
        s = CidStream()
        with open(obj, "rb") as f:
            while chunk := f.read(_BLOCK):
                s.update(chunk)
                if s.size > budget:
                    raise ArtifactTooLarge(cid, budget)
                out.write(chunk)
        got = s.finalize()
        if got != cid:
            raise CIDMismatch(cid, got, self.url)
        return s.size

    def get_file(self, cid: str, dest: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                 timeout: float = DEFAULT_TIMEOUT) -> Path:
        cid = normalize_cid(cid)
        obj = self._file_or_raise(cid)
        size = obj.stat().st_size
        if size > max_size:
            raise ArtifactTooLarge(cid, max_size, size)
        dest = Path(dest)
        with atomic_file(dest) as (_, out):
            self._copy_verified(cid, obj, out, max_size)
        return dest

    def get_dir(self, cid: str, dest: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                timeout: float = DEFAULT_TIMEOUT) -> Path:
        cid = normalize_cid(cid)
        listing = self._dir(cid)
        if not listing.is_file():
            if self._obj(cid).is_file():
                raise WrongArtifactKind(f"{cid} is a file in {self.url}; use get_file or cat")
            raise ArtifactNotFound(cid, self.url)
        try:
            files = json.loads(listing.read_text())["files"]
            declared = sum(int(e["size"]) for e in files)
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError(f"{listing}: corrupt directory listing ({e})") from None
        if declared > max_size:
            raise ArtifactTooLarge(cid, max_size, declared)
        dest = Path(dest)
        with atomic_dir(dest) as tmp:
            budget = max_size
            for e in files:
                fcid = normalize_cid(e["cid"])
                obj = self._obj(fcid)
                if not obj.is_file():
                    raise ArtifactNotFound(fcid, f"{self.url} (file {e['path']} of directory {cid})")
                target = safe_join(tmp, e["path"])
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as out:
                    budget -= self._copy_verified(fcid, obj, out, budget)
            got = dir_cid(tmp)
            if got != cid:
                raise CIDMismatch(cid, got, self.url)
        return dest

    def has(self, cid: str) -> bool:
        cid = normalize_cid(cid)
        return self._obj(cid).is_file() or self._dir(cid).is_file()

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise ArtifactNotFound(normalize_cid(cid), self.url)
