"""KuboStore: a real IPFS node over its Kubo RPC API (Kubo, or js-ipfs which speaks the same API).

Plain HTTP POSTs to ``/api/v0/*`` with ``requests`` rather than ``ipfshttpclient``:
the latter refuses node versions it does not know (js-ipfs 0.18, recent Kubo) and
buffers multipart bodies in memory. Uploads here are streamed (chunked multipart),
hashed locally while they stream, and the node's CID must equal the local one, so a
node configured with other CID settings is caught on the first add.

Missing content must fail fast instead of hanging on a network search: every
presence check is ``offline=true`` with a short ``probe_timeout`` (a node that does
have the block answers in milliseconds).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote, urlsplit

import requests

from .base import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, ArtifactStore, atomic_dir, atomic_file, safe_join
from .cid import CidStream, dir_cid, normalize_cid, walk_tree
from .errors import (
    ArtifactNotFound,
    ArtifactTooLarge,
    CIDMismatch,
    InvalidStoreSpec,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    WrongArtifactKind,
)

ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": "size-262144",
    "hash": "sha2-256",
    "pin": "true",
    "cid-base": "base32",
    "progress": "false",
}
"""The project's CID settings, passed explicitly: node defaults differ (CIDv0, no raw leaves)."""

_BLOCK = 1 << 20
_MISSING = re.compile(r"timed out|not found|could not find|no link named|offline|does not exist|unknown|no such",
                      re.I)
_MULTIADDR = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(?:/(http|https))?/?$")


def node_url(spec: str) -> str:
    """``http(s)://host:port`` or a multiaddr like ``/ip4/127.0.0.1/tcp/5001`` -> base URL."""
    m = _MULTIADDR.match(spec)
    if m:
        proto, host, port, scheme = m.groups()
        host = f"[{host}]" if proto == "ip6" else host
        return f"{scheme or 'http'}://{host}:{port}"
    u = urlsplit(spec)
    if u.scheme in ("http", "https") and u.netloc:
        return f"{u.scheme}://{u.netloc}"
    raise InvalidStoreSpec(f"invalid IPFS node address {spec!r}: expected http://host:port or /ip4/HOST/tcp/PORT")


def _ms(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}ms"


class KuboStore(ArtifactStore):
    """Artifacts on an IPFS node reached over its RPC API (``/api/v0``)."""

    def __init__(self, url: str, *, probe_timeout: float = 3.0, connect_timeout: float = 5.0):
        self.url = node_url(url)
        self.probe_timeout = probe_timeout
        self.connect_timeout = connect_timeout
        self._http = requests.Session()

    # ------------------------------------------------------------ transport
    def _post(self, cmd: str, params: dict | None = None, *, timeout: float, cid: str | None = None,
              data: Iterable[bytes] | None = None, headers: dict | None = None,
              stream: bool = False) -> requests.Response:
        try:
            r = self._http.post(f"{self.url}/api/v0/{cmd}", params=params, data=data, headers=headers,
                                stream=stream, timeout=(self.connect_timeout, timeout + 5))
        except requests.Timeout:
            raise StoreTimeout(f"{cmd} {cid or ''} on {self.url}: no answer within {timeout:g}s") from None
        except requests.ConnectionError as e:
            reason = str(e.args[0] if e.args else e)
            reason = "connection refused" if "refused" in reason.lower() else reason.splitlines()[0][:160]
            raise StoreUnavailable(self.url, reason) from None
        if r.status_code == 200:
            return r
        try:
            message = str(r.json().get("Message") or r.json().get("message") or r.text)
        except ValueError:
            if r.status_code in (404, 405):
                raise StoreUnavailable(self.url, f"HTTP {r.status_code} on /api/v0/{cmd}: not an IPFS RPC API") from None
            message = r.text[:200]
        finally:
            r.close()
        if cid and _MISSING.search(message):
            raise ArtifactNotFound(cid, self.url)
        raise StoreError(f"IPFS node at {self.url}: {cmd} {cid or ''} failed: {message.strip()[:300]}")

    @staticmethod
    def _lines(r: requests.Response) -> list[dict]:
        return [json.loads(line) for line in r.iter_lines() if line.strip()]

    # ------------------------------------------------------------ writes
    def _multipart(self, parts: list[tuple[str, Path | bytes | None]], boundary: str,
                   hasher: CidStream | None = None) -> Iterator[bytes]:
        """Stream a multipart body: ``(name, None)`` is a directory, bytes/Path a file."""
        for name, body in parts:
            ctype = "application/x-directory" if body is None else "application/octet-stream"
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                   f"filename=\"{quote(name, safe='/')}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
            if isinstance(body, bytes):
                if hasher:
                    hasher.update(body)
                yield body
            elif isinstance(body, Path):
                with open(body, "rb") as f:
                    while chunk := f.read(_BLOCK):
                        if hasher:
                            hasher.update(chunk)
                        yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    def _add(self, parts: list[tuple[str, Path | bytes | None]], root: str, hasher: CidStream | None) -> str:
        boundary = "arstore" + secrets.token_hex(12)
        r = self._post("add", ADD_PARAMS, timeout=max(DEFAULT_TIMEOUT, 600),
                       data=self._multipart(parts, boundary, hasher),
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        entries = self._lines(r)
        for e in entries:
            if e.get("Name") == root and e.get("Hash"):
                return normalize_cid(e["Hash"])
        if len(entries) == 1 and entries[0].get("Hash"):  # some nodes name a lone file by its CID
            return normalize_cid(entries[0]["Hash"])
        raise StoreError(f"IPFS node at {self.url}: add returned no CID for {root!r}: {entries!r:.200}")

    def _add_checked(self, parts, root: str) -> str:
        s = CidStream()
        got = self._add(parts, root, s)
        expected = s.finalize()
        if got != expected:
            raise CIDMismatch(expected, got, f"{self.url} (node CID settings differ from CIDv1/raw-leaves/256KiB)")
        return got

    def add_bytes(self, data: bytes) -> str:
        return self._add_checked([("blob", bytes(data))], "blob")

    def add_file(self, path: str | os.PathLike[str]) -> str:
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: not a regular file")
        return self._add_checked([(path.name or "file", path)], path.name or "file")

    def add_dir(self, path: str | os.PathLike[str]) -> str:
        path = Path(path)
        entries = walk_tree(path)
        expected = dir_cid(path)
        root = "root"
        parts: list[tuple[str, Path | bytes | None]] = [(root, None)]
        parts += [(f"{root}/{rel}", None if kind == "dir" else path / rel) for rel, kind in entries]
        got = self._add(parts, root, None)
        if got != expected:
            raise CIDMismatch(expected, got, f"{self.url} (directory {path})")
        return got

    # ------------------------------------------------------------ reads
    def _stat(self, cid: str) -> dict:
        """Type and size of a present CID; ArtifactNotFound fast if the node does not hold it."""
        r = self._post("files/stat", {"arg": f"/ipfs/{cid}", "offline": "true",
                                      "timeout": _ms(self.probe_timeout)},
                       timeout=self.probe_timeout, cid=cid)
        return r.json()

    def _stream(self, cid: str, out, *, size: int, max_size: int, timeout: float) -> int:
        """Write the verified bytes of file ``cid`` to ``out``; return the byte count."""
        r = self._post("cat", {"arg": cid, "offline": "true", "timeout": _ms(timeout)},
                       timeout=timeout, cid=cid, stream=True)
        s = CidStream()
        try:
            for chunk in r.iter_content(_BLOCK):
                s.update(chunk)
                if s.size > max_size:
                    raise ArtifactTooLarge(cid, max_size)
                out(chunk)
        except requests.RequestException as e:
            raise StoreTimeout(f"cat {cid} from {self.url} interrupted: {str(e)[:160]}") from None
        finally:
            r.close()
        if s.size < size:
            raise StoreError(f"IPFS node at {self.url} sent {s.size} of {size} bytes of {cid} (missing blocks?)")
        got = s.finalize()
        if got != cid:
            raise CIDMismatch(cid, got, self.url)
        return s.size

    def _file_stat(self, cid: str, max_size: int) -> int:
        st = self._stat(cid)
        if st.get("Type") == "directory":
            raise WrongArtifactKind(f"{cid} is a directory on {self.url}; use get_dir")
        size = int(st.get("Size", 0))
        if size > max_size:
            raise ArtifactTooLarge(cid, max_size, size)
        return size

    def cat(self, cid: str, *, max_size: int = DEFAULT_MAX_SIZE, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        cid = normalize_cid(cid)
        size = self._file_stat(cid, max_size)
        buf = bytearray()
        self._stream(cid, buf.extend, size=size, max_size=max_size, timeout=timeout)
        return bytes(buf)

    def get_file(self, cid: str, dest: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                 timeout: float = DEFAULT_TIMEOUT) -> Path:
        cid = normalize_cid(cid)
        size = self._file_stat(cid, max_size)
        dest = Path(dest)
        with atomic_file(dest) as (_, f):
            self._stream(cid, f.write, size=size, max_size=max_size, timeout=timeout)
        return dest

    def _ls(self, cid: str, timeout: float) -> list[dict]:
        r = self._post("ls", {"arg": cid, "offline": "true", "timeout": _ms(timeout), "cid-base": "base32"},
                       timeout=timeout, cid=cid)
        links: list[dict] = []
        for obj in self._lines(r):
            for o in obj.get("Objects", []):
                links += o.get("Links") or []
        return links

    def get_dir(self, cid: str, dest: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                timeout: float = DEFAULT_TIMEOUT) -> Path:
        cid = normalize_cid(cid)
        if self._stat(cid).get("Type") != "directory":
            raise WrongArtifactKind(f"{cid} is a file on {self.url}; use get_file or cat")
        files: list[tuple[str, str, int]] = []
        total = 0

        def walk(dcid: str, rel: str) -> None:
            nonlocal total
            for link in self._ls(dcid, timeout):
                name, lcid = link["Name"], normalize_cid(link["Hash"])
                path = f"{rel}/{name}" if rel else name
                if int(link.get("Type", 2)) == 1:
                    walk(lcid, path)
                else:
                    size = int(link.get("Size", 0))
                    total += size
                    if total > max_size:
                        raise ArtifactTooLarge(cid, max_size, total)
                    files.append((path, lcid, size))

        walk(cid, "")
        dest = Path(dest)
        with atomic_dir(dest) as tmp:
            budget = max_size
            for rel, fcid, size in files:
                target = safe_join(tmp, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as f:
                    budget -= self._stream(fcid, f.write, size=size, max_size=budget, timeout=timeout)
            got = dir_cid(tmp)
            if got != cid:
                raise CIDMismatch(cid, got, self.url)
        return dest

    def has(self, cid: str) -> bool:
        cid = normalize_cid(cid)
        try:
            self._post("block/stat", {"arg": cid, "offline": "true", "timeout": _ms(self.probe_timeout)},
                       timeout=self.probe_timeout, cid=cid).close()
            return True
        except ArtifactNotFound:
            return False

    def pin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        if not self.has(cid):
            raise ArtifactNotFound(cid, self.url)
        self._post("pin/add", {"arg": cid, "recursive": "true", "offline": "true",
                               "timeout": _ms(DEFAULT_TIMEOUT)}, timeout=DEFAULT_TIMEOUT, cid=cid).close()
