"""The sponsor's sealed set and the sealed commands, without training (docs/sealed-evaluation.md).

The whole flow on a chain, with training and verifiers, is tests/test_e2e_sealed.py; the
contract's rules are tests/contracts/sealed.test.js. Here: cutting, keeping and checking the
shards, their Merkle root against the contract's proof check, and the commands' errors.
"""

from __future__ import annotations

import hashlib
import random
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from arledger import merkle, sealed
from arledger.chain.errors import LedgerInvalidShardProof, LedgerNotSealed, LedgerRoundNotClosed
from arledger.chain.ledger import SealParams
from arledger.cli import main
from arledger.errors import SealedError
from arledger.harness import load_harness
from arledger.tasks import TEMPLATES
from tests.fixtures.chain import E, task_params
from tests.test_e2e_support import one_line_error

CHARLM = load_harness(TEMPLATES / "charlm" / "harness")


def _set(tmp_path: Path, rounds: int = 3, check=lambda _d: None) -> sealed.SealedSet:
    heldout = tmp_path / "private.txt"
    heldout.write_bytes(random.Random(1).randbytes(30000))
    return sealed.create_set(CHARLM, "val", heldout, rounds, check, home=tmp_path / "sealed")


def test_a_sealed_set_is_kept_private_checked_and_proven_like_the_contract_does(tmp_path):
    s = _set(tmp_path)
    assert s.rounds == 3 and s.split == "val"
    assert stat.S_IMODE(s.directory.stat().st_mode) == 0o700
    assert s.root == merkle.merkle_root([hashlib.sha256(s.shard(r)).digest() for r in range(3)])
    assert merkle.verify(s.root, 1, s.digests[1], s.proof(1)) and not merkle.verify(s.root, 0, s.digests[1], s.proof(1))
    assert sealed.load_set(s.root, tmp_path / "sealed") == s  # found again by the root the chain holds
    path = s.shard_path(2)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.raises(SealedError, match="not the digest committed"):
        s.shard(2)
    with pytest.raises(SealedError, match="only the sponsor"):
        sealed.load_set(b"\x01" * 32, tmp_path / "sealed")


def test_bad_held_out_data_leaves_nothing_behind(tmp_path):
    def refuse(data: bytes) -> None:
        raise ValueError("too short")

    with pytest.raises(SealedError, match="shard 0 is not data the task's harness can score: too short"):
        _set(tmp_path, check=refuse)
    assert not (tmp_path / "sealed").exists()  # checked before anything is written
    with pytest.raises(SealedError, match="same shard"):
        (tmp_path / "same.txt").write_bytes(b"ab" * 10)
        sealed.create_set(CHARLM, "val", tmp_path / "same.txt", 2, lambda _d: None, home=tmp_path / "s2")


def test_the_digits_harness_cuts_its_own_format_and_its_private_images_are_new():
    digits = load_harness(TEMPLATES / "digits" / "harness")
    raw = digits.module.sample_private(b"k" * 32, 2)
    shards = sealed.cut(digits, raw, 2)
    public = digits.build_data()
    from safetensors.torch import load

    seen = {bytes(x.tolist()) for split in public.values() for x in load(split)["x"]}
    images = [bytes(x.tolist()) for s in shards for x in load(s)["x"]]
    assert len(images) == 720 and not seen & set(images)  # no public image among them


def test_a_chain_checks_the_sets_proofs(chain, tmp_path):
    s = _set(tmp_path)
    tx = chain.ledger.create_sealed_task(task_params(), SealParams(s.root, 3, 600, 600, E), value=E)
    task_id = int(tx.event("TaskCreated")["taskId"])
    with pytest.raises(LedgerRoundNotClosed):
        chain.ledger.open_shard(task_id, 0, s.digests[0], b"\x01\x55\x12\x20" + s.digests[0], s.proof(0))
    chain.advance(601)
    with pytest.raises(LedgerInvalidShardProof):
        chain.ledger.open_shard(task_id, 0, s.digests[1], b"\x01\x55\x12\x20" + s.digests[1], s.proof(1))
    chain.ledger.open_shard(task_id, 0, s.digests[0], b"\x01\x55\x12\x20" + s.digests[0], s.proof(0))
    assert chain.ledger.shard(task_id, 0).digest == s.digests[0] and chain.ledger.shard(task_id, 1) is None
    assert chain.ledger.sealed_round(task_id, 0).released and chain.ledger.balance_of(chain.address(0)) == E // 3
    open_task = chain.create_task()
    with pytest.raises(LedgerNotSealed):
        chain.ledger.release_round(open_task, 0)
    with pytest.raises(SealedError, match="not sealed"):
        sealed.open_round(chain.ledger, None, open_task, 0)


def test_the_sealed_commands_say_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    (tmp_path / "taken.txt").write_text("mine")
    one_line_error(runner.invoke(main, ["task", "heldout", "charlm", "--out", "taken.txt"]), "taken.txt", "never overwritten")
    one_line_error(runner.invoke(main, ["task", "heldout", "nonsense", "--out", "x.txt"]), "nonsense")
    res = runner.invoke(main, ["task", "noise", "digits", "--seeds", "3"])
    assert res.exit_code == 2 and "at least two seeds" in res.output
    res = runner.invoke(main, ["task", "noise", "digits", "--seeds", "a-b"])
    assert res.exit_code == 2 and "a range (1-5) or a list" in res.output
    for cmd in (["task", "reveal", "--help"], ["task", "heldout", "--help"], ["task", "noise", "--help"]):
        out = runner.invoke(main, cmd).output
        assert "Examples:" in out


def test_task_noise_measures_the_seed_and_shard_spread_and_proposes_epsilon(tmp_path, monkeypatch):
    """`artrain task noise`, small: two digits seeds of 20 steps on two shards of private images."""
    import json

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(main, ["task", "heldout", "digits", "--rounds", "2", "--out", "private.bin"]).exit_code == 0
    res = runner.invoke(main, ["task", "noise", "digits", "--seeds", "1,2", "--steps", "20", "--segment-steps", "10",
                               "--heldout", "private.bin", "--rounds", "2", "--store", f"embedded:{tmp_path / 'store'}",
                               "--json"])
    assert res.exit_code == 0, res.output
    n = json.loads(res.output.strip().splitlines()[-1])
    assert n["seeds"] == [1, 2] and len(n["public"]) == 2 and [len(s) for s in n["shards"]] == [2, 2]
    assert n["public"][0] != n["public"][1] and n["seed_sigma"] > 0  # two seeds differ, on both splits
    assert n["epsilon"] == pytest.approx(3 * max(n["seed_sigma"], n["public_sigma"]))
    assert n["epsilon_micro"] == round(n["epsilon"] * 1e6)
