"""End to end through the real js-ipfs node: every artifact (spec, data, code, checkpoints,
manifest, weights) goes through the node's Kubo RPC API (store spec = the node's URL)."""

from __future__ import annotations

import pytest

from tests.test_e2e_support import DIGITS, E, make_world, SEGMENT_STEPS, STEPS, TERMS


@pytest.fixture(scope="module")
def world(anvil_chain, ipfs_node, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "e2e-ipfs", store_spec=ipfs_node.url)


def test_honest_flow_through_js_ipfs(world):
    task_id = world.create_task(sampling={"random_segments": 1, "suspicious_segments": 1},
                                terms={**TERMS, "quorum": 1})
    assert world.arverify("register", "--stake", "1eth", "--dev-account", 3, "--json")["stake"] == E
    run = world.tmp / "runs" / "honest"
    world.artrain("run", DIGITS, "--steps", STEPS, "--segment-steps", SEGMENT_STEPS, "--seed", 1, "--out", run,
                  "--store", world.store_spec, "--json")
    sub = world.submit(run, trainer=1, fresh=False)
    assert sub["manifest_cid"].startswith("bafk")
    first = world.watch(3)[3]
    assert [r["decision"] for r in first if r.get("claim") == sub["claim_id"]] == ["confirm"]
    world.close_windows(3)
    assert world.ledger.claim_state(sub["claim_id"]) == "Accepted"
    assert world.owed(1) == sub["stake"] + E
    best = world.artrain("best", "--task", task_id, "--download", world.tmp / "best", "--store",
                         world.store_spec, "--json")
    assert best["claim_id"] == sub["claim_id"] and best["weights_cid"] == sub["weights_cid"]
    assert (world.tmp / "best" / "weights.safetensors").read_bytes() == (run / "final.safetensors").read_bytes()
