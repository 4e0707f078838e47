"""The artifact store's exception hierarchy (root: StoreError).

Every error names what it is about (a CID, a URL, a path) in its one-line message,
because the CLI prints ``str(exc)`` and nothing else.
"""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error raised on purpose by arstore."""


class InvalidCID(StoreError, ValueError):
    """Text or bytes that are not a CID this project accepts (CIDv1, sha2-256, raw or dag-pb)."""


class InvalidStoreSpec(StoreError, ValueError):
    """A store spec (``open_store`` argument or ``ARLEDGER_IPFS``) that names no known store."""


class ArtifactNotFound(StoreError, LookupError):
    """The store does not hold this CID (a node answers this fast: it does not search the network)."""

    def __init__(self, cid: str, where: str):
        super().__init__(f"artifact {cid} not found in {where}")
        self.cid = cid
        self.where = where


class CIDMismatch(StoreError):
    """The bytes read (or written) hash to another CID than the one asked for: never trust them."""

    def __init__(self, expected: str, actual: str, where: str):
        super().__init__(f"content of {expected} from {where} hashes to {actual} (tampered or corrupt)")
        self.expected = expected
        self.actual = actual
        self.where = where


class ArtifactTooLarge(StoreError):
    """An artifact is bigger than the caller's ``max_size``; raised before reading all of it."""

    def __init__(self, cid: str, max_size: int, size: int | None = None):
        got = f"{size} bytes" if size is not None else "more bytes"
        super().__init__(f"artifact {cid} is too large: {got} > max_size {max_size}")
        self.cid = cid
        self.max_size = max_size
        self.size = size


class StoreUnavailable(StoreError, ConnectionError):
    """The node cannot be reached (or answered something that is not its RPC API)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"IPFS node at {url} unavailable: {reason}")
        self.url = url
        self.reason = reason


class StoreTimeout(StoreError, TimeoutError):
    """A read did not finish within its timeout."""


class WrongArtifactKind(StoreError):
    """A file was asked for and the CID is a directory, or the other way round."""


class InvalidDirectory(StoreError):
    """A directory that cannot be stored canonically (symlink, special file, too many entries...)."""


class DestinationExists(StoreError, FileExistsError):
    """``get_dir`` refuses to write into a non-empty existing directory."""
