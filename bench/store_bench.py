"""Artifact store benchmark: add/cat throughput of the embedded store and a real IPFS node.

Same bytes everywhere; sha256 over those bytes is the upper bound (every verified read
hashes at least once). The node is ``$ARLEDGER_IPFS`` if set, else a fresh offline
js-ipfs started (and stopped) here.

    python -m bench.store_bench              # 64 MB, prints a table
    python -m bench.store_bench --size-mb 16 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from arstore import bytes_cid, EmbeddedStore, file_cid, KuboStore
from arstore.devnode import start_node


def _timed(fn, size: int, repeat: int = 1) -> float:
    """Best-of-``repeat`` throughput in MB/s (1 MB = 1e6 bytes)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return size / 1e6 / best


def run(size_mb: int = 64, node_url: str | None = None) -> dict:
    """Measure and return ``{"size_bytes", "node", "sha256_MBps", "cid_MBps", "embedded": {...}, "node_store": {...}}``."""
    size = size_mb * 1_000_000
    data = np.random.default_rng(20240601).integers(0, 256, size, dtype=np.uint8).tobytes()
    node_url = node_url or os.environ.get("ARLEDGER_IPFS") or None
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        tmp = Path(tmp)
        src = tmp / "payload.bin"
        src.write_bytes(data)
        expected = file_cid(src)
        res: dict = {"size_bytes": size,
                     "sha256_MBps": _timed(lambda: hashlib.sha256(data).digest(), size, 3),
                     "cid_MBps": _timed(lambda: bytes_cid(data), size, 3)}

        def measure(store) -> dict:
            cids = []
            add = _timed(lambda: cids.append(store.add_file(src)), size)
            assert cids[0] == expected, f"{store.url}: CID {cids[0]} != {expected}"
            cat = _timed(lambda: store.cat(expected, max_size=size), size, 2)
            get = _timed(lambda: store.get_file(expected, tmp / f"out-{len(cids)}", max_size=size), size)
            return {"url": store.url, "add_file_MBps": add, "cat_MBps": cat, "get_file_MBps": get}

        res["embedded"] = measure(EmbeddedStore(tmp / "embedded"))
        node = None
        if not node_url:
            node = start_node(tmp / "jsipfs" / "repo", log_path=tmp / "jsipfs.log")
            node_url = node.url
        try:
            res["node"] = "js-ipfs 0.18.1 (started here)" if node else node_url
            res["node_store"] = measure(KuboStore(node_url))
        finally:
            if node:
                node.stop()
    res["cid"] = expected
    return res


def print_table(r: dict) -> None:
    mb = r["size_bytes"] / 1e6
    print(f"artifact store, {mb:.0f} MB of random bytes (MB/s; higher is better)")
    print(f"  {'':28} {'add_file':>9} {'cat':>9} {'get_file':>9}")
    for key, label in (("embedded", "embedded store"), ("node_store", "IPFS node (Kubo RPC)")):
        s = r[key]
        print(f"  {label[:28]:28} {s['add_file_MBps']:9.0f} {s['cat_MBps']:9.0f} {s['get_file_MBps']:9.0f}")
    print(f"  node: {r['node']}")
    print(f"  upper bound: sha256 {r['sha256_MBps']:.0f} MB/s; CID hashing (aleph_cid) {r['cid_MBps']:.0f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=64)
    ap.add_argument("--node", default=None, help="node URL (default: $ARLEDGER_IPFS or a js-ipfs started here)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    r = run(a.size_mb, a.node)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print_table(r)


if __name__ == "__main__":
    main()
