"""arstore: content-addressed artifact store (a real IPFS node over Kubo RPC, or embedded).

    from arstore import open_store
    store = open_store()                 # $ARLEDGER_IPFS, else embedded at $ARLEDGER_HOME/store
    cid = store.add_file("ckpt.safetensors")
    data = store.cat(cid)                # verified against the CID; ArtifactTooLarge over 64 MiB

See docs/artifact-store.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, ArtifactStore
from .cid import (
    CHUNK_SIZE,
    bytes_cid,
    cid_codec,
    cid_from_bytes,
    cid_to_bytes,
    cid_to_digest,
    digest_to_cid,
    dir_cid,
    file_cid,
    normalize_cid,
)
from .embedded import EmbeddedStore
from .errors import (
    ArtifactNotFound,
    ArtifactTooLarge,
    CIDMismatch,
    DestinationExists,
    InvalidCID,
    InvalidDirectory,
    InvalidStoreSpec,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    WrongArtifactKind,
)
from .kubo import KuboStore

ENV_IPFS = "ARLEDGER_IPFS"
ENV_HOME = "ARLEDGER_HOME"


def default_store_path() -> Path:
    """``$ARLEDGER_HOME/store``, or ``~/.arledger/store``."""
    home = os.environ.get(ENV_HOME) or os.path.join(os.path.expanduser("~"), ".arledger")
    return Path(home) / "store"


def open_store(spec: str | None = None) -> ArtifactStore:
    """Open the store named by ``spec``.

    ``None`` -> ``$ARLEDGER_IPFS`` if set, else the embedded store at ``default_store_path()``;
    ``"embedded:/path"`` -> EmbeddedStore (created if missing, inside an existing directory);
    ``"http://127.0.0.1:5001"`` or a multiaddr
    (``/ip4/127.0.0.1/tcp/5001``) -> KuboStore.
    """
    if spec is None:
        spec = os.environ.get(ENV_IPFS) or None
        if spec is None:
            return EmbeddedStore(default_store_path())
    spec = spec.strip()
    if spec.startswith("embedded:"):
        path = spec[len("embedded:"):]
        if not path:
            raise InvalidStoreSpec(f"invalid store spec {spec!r}: embedded: needs a path")
        # A store named on purpose is created only inside a directory that exists: a typo in
        # the path is an error, not a new empty store that silently holds nothing.
        parent = Path(path).expanduser().absolute().parent
        if not Path(path).expanduser().exists() and not parent.is_dir():
            raise InvalidStoreSpec(f"invalid store spec {spec!r}: {parent} does not exist (create it first, "
                                   "or name an existing store)")
        return EmbeddedStore(path)
    if spec.startswith(("http://", "https://", "/")):
        return KuboStore(spec)
    raise InvalidStoreSpec(
        f"invalid store spec {spec!r}: expected embedded:/path, http://host:port or /ip4/HOST/tcp/PORT")


__all__ = [
    "ArtifactStore", "EmbeddedStore", "KuboStore", "open_store", "default_store_path",
    "bytes_cid", "file_cid", "dir_cid", "digest_to_cid", "cid_to_digest", "cid_to_bytes", "cid_from_bytes",
    "normalize_cid", "cid_codec", "CHUNK_SIZE", "DEFAULT_MAX_SIZE", "DEFAULT_TIMEOUT",
    "StoreError", "ArtifactNotFound", "CIDMismatch", "ArtifactTooLarge", "StoreUnavailable", "StoreTimeout",
    "InvalidCID", "InvalidStoreSpec", "InvalidDirectory", "WrongArtifactKind", "DestinationExists",
]
