"""The one interface both stores implement, plus the atomic-write helpers they share."""

from __future__ import annotations

import abc
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DestinationExists, InvalidDirectory

MiB = 1 << 20
DEFAULT_MAX_SIZE = 64 * MiB
"""Default read limit: a caller must opt in to pulling more (a checkpoint, a dataset)."""
DEFAULT_TIMEOUT = 60.0


class ArtifactStore(abc.ABC):
    """Content-addressed, pinned storage of files and directory trees.

    Every CID is CIDv1 / sha2-256 / raw leaves / 256 KiB chunks (see ``arstore.cid``),
    so both implementations give the same CID for the same bytes. Every read re-computes
    the CID of what it got and raises ``CIDMismatch`` if it differs: a store (or a node
    on the network) is never trusted.
    """

    url: str
    """Where the store lives, for messages (``embedded:/path`` or ``http://host:port``)."""

    @abc.abstractmethod
    def add_bytes(self, data: bytes) -> str:
        """Store ``data`` as a file; return its CID (pinned)."""

    @abc.abstractmethod
    def add_file(self, path: str | os.PathLike[str]) -> str:
        """Store the file at ``path`` (streamed); return its CID (pinned)."""

    @abc.abstractmethod
    def add_dir(self, path: str | os.PathLike[str]) -> str:
        """Store a directory tree (e.g. a code bundle); return the UnixFS root CID (pinned)."""

    @abc.abstractmethod
    def cat(self, cid: str, *, max_size: int = DEFAULT_MAX_SIZE, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """The bytes of a file CID, verified against the CID."""

    @abc.abstractmethod
    def get_file(self, cid: str, dest: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                 timeout: float = DEFAULT_TIMEOUT) -> Path:
        """Write a file CID to ``dest`` (streamed to a temp file, verified, then renamed)."""

    @abc.abstractmethod
    def get_dir(self, cid: str, dest: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                timeout: float = DEFAULT_TIMEOUT) -> Path:
        """Materialize a directory CID at ``dest`` (must not exist or be empty); ``max_size`` is the total."""

    @abc.abstractmethod
    def has(self, cid: str) -> bool:
        """Whether this store holds the CID locally (never searches a network)."""

    @abc.abstractmethod
    def pin(self, cid: str) -> None:
        """Keep the CID from garbage collection; ArtifactNotFound if the store does not hold it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


@contextmanager
def atomic_file(dest: Path) -> Iterator[tuple[Path, object]]:
    """Yield ``(tmp_path, fileobj)`` next to ``dest``; rename onto ``dest`` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            yield tmp_path, f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temp directory next to ``dest``; rename it onto ``dest`` only if the block succeeds."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DestinationExists(f"{dest}: exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def safe_join(root: Path, rel: str) -> Path:
    """``root/rel`` for a relative path from a listing; refuses ``..``, absolute paths and empty names."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise InvalidDirectory(f"unsafe path {rel!r} in a stored directory")
    return root.joinpath(*parts)
