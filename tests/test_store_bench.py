"""The store benchmark runs end to end on a small payload and reports sane figures."""

import pytest

from bench import store_bench

pytestmark = pytest.mark.ipfsnode


def test_bench_runs_and_reports(ipfs_node, capsys):
    r = store_bench.run(size_mb=4, node_url=ipfs_node.url)
    assert r["size_bytes"] == 4_000_000 and r["cid"].startswith("bafy")
    for key in ("embedded", "node_store"):
        assert all(r[key][m] > 0 for m in ("add_file_MBps", "cat_MBps", "get_file_MBps"))
    # Nothing verified can beat one hash pass over the bytes by much.
    assert r["embedded"]["cat_MBps"] < 3 * r["sha256_MBps"]
    store_bench.print_table(r)
    assert "embedded store" in capsys.readouterr().out
