"""The dashboard's event-to-view layer (arledger.dashboard.index) with events written by hand."""

from __future__ import annotations

from types import SimpleNamespace

from arledger.chain.artifact import load_artifact
from arledger.dashboard.index import LedgerIndex
from arstore import bytes_cid, cid_to_bytes, cid_to_digest

ENUMS = {n: load_artifact().enum(n) for n in ("ClaimState", "DisputeState", "ChallengeKind")}  # the contract's own


def enum(name: str, member: str) -> int:
    return ENUMS[name].index(member)


CODE = str(bytes_cid(b"code"))
MANIFEST = str(bytes_cid(b"manifest"))
T, V1, V2, V3, SPONSOR = "0xTrainer", "0xV1", "0xV2", "0xV3", "0xSponsor"
D = bytes(range(32))


def ev(name, block, **args):
    return SimpleNamespace(name=name, args=args, block_number=block, block_hash=f"0x{block:064x}", log_index=0,
                           tx_hash=f"0xtx{block}")


def reveal(claim, block, loss, parent=0, trainer=T):
    return ev("ClaimRevealed", block, claimId=claim, taskId=1, trainer=trainer, parentId=parent,
              codeCid=cid_to_bytes(CODE), manifestDigest=cid_to_digest(MANIFEST), merkleRoot=b"\x01" * 32,
              numSegments=4, claimedLoss=loss, stake=10**17, seed=b"\x00" * 32, commitment=b"\x00" * 32,
              challengeDeadline=1000)


def story() -> LedgerIndex:
    idx = LedgerIndex(ENUMS)
    for e in [
        ev("TaskCreated", 1, taskId=1, sponsor=SPONSOR, params=(), pool=3 * 10**18),
        ev("VerifierRegistered", 2, verifier=V1, added=10**18, stake=10**18),
        ev("VerifierRegistered", 2, verifier=V2, added=10**18, stake=10**18),
        ev("VerifierRegistered", 2, verifier=V3, added=10**18, stake=10**18),
        reveal(1, 3, 2_500_000),
        reveal(2, 4, 2_000_000, trainer="0xCheat"),
        ev("ClaimConfirmed", 5, claimId=1, verifier=V1, segments=[0, 3], measuredLoss=2_500_000, confirmations=1),
        ev("ClaimConfirmed", 5, claimId=1, verifier=V2, segments=[1, 2], measuredLoss=2_500_000, confirmations=2),
        ev("ClaimChallenged", 6, claimId=2, disputeId=D, challenger=V3, kind=0, segment=3, claimedStart=b"",
           claimedEnd=b"", observed=b"", votingDeadline=900),
        ev("DisputeVoted", 7, disputeId=D, voter=V1, uphold=True, votesUphold=1, votesDismiss=0),
        ev("DisputeVoted", 7, disputeId=D, voter=V2, uphold=True, votesUphold=2, votesDismiss=0),
        ev("DisputeResolved", 8, disputeId=D, claimId=2, outcome=enum("DisputeState", "Upheld"), votesUphold=2, votesDismiss=0,
           challengerPaid=15 * 10**16, trainerPaid=0, perVoterShare=10**16, slashed=0, newChallengeDeadline=0),
        ev("ClaimFinalized", 8, claimId=2, taskId=1, outcome=enum("ClaimState", "Rejected"), improved=False, reward=0, trainerPaid=0),
        ev("ClaimFinalized", 9, claimId=1, taskId=1, outcome=enum("ClaimState", "Accepted"), improved=True, reward=10**18, trainerPaid=10**17),
        ev("BestClaimChanged", 9, taskId=1, claimId=1, loss=2_500_000, previousClaimId=0, previousLoss=3_000_000),
        ev("Settled", 10, claimId=1, verifier=V1, amount=10**16),
        ev("VoteSettled", 10, disputeId=D, voter=V1, amount=10**16),
        ev("ExperimentReported", 11, taskId=1, reporter=T, codeCid=cid_to_bytes(CODE),
           manifestDigest=cid_to_digest(MANIFEST), loss=2_700_000, note="lr 1e-1 diverged"),
        ev("SomethingNew", 12, x=1),  # an event this version does not know: counted, ignored
    ]:
        idx.apply(e)
    return idx


def test_claims_disputes_and_votes_fold_into_states_and_payouts():
    idx = story()
    honest, cheat = idx.claims[1], idx.claims[2]
    assert (honest.state, honest.improved, honest.reward, len(honest.confirmations)) == ("Accepted", True, 10**18, 2)
    assert honest.confirmations[0]["segments"] == [0, 3] and honest.code_cid == CODE and honest.manifest_cid == MANIFEST
    assert cheat.state == "Rejected"
    [d] = idx.disputes_of(2)
    assert d["kind"] == "Segment" and d["outcome"] == "Upheld" and [v["voter"] for v in d["votes"]] == [V1, V2]
    assert d["payouts"]["challenger"] == 15 * 10**16
    assert d["payouts"]["trainer_stake_lost"] == 10**17, "upheld: the trainer's whole stake moved (slashed=0 is the confirmers')"
    assert idx.best_of(1)["claim_id"] == 1 and idx.events == 19 and idx.last_block == 12


def test_a_dispute_is_shown_while_open_and_cleared_when_dismissed():
    idx = LedgerIndex(ENUMS)
    idx.apply(ev("TaskCreated", 1, taskId=1, sponsor=SPONSOR, params=(), pool=0))
    idx.apply(reveal(1, 2, 2_000_000))
    idx.apply(ev("ClaimChallenged", 3, claimId=1, disputeId=D, challenger=V3, kind=1, segment=2, claimedStart=b"",
                 claimedEnd=b"", observed=b"", votingDeadline=900))
    assert idx.claims[1].state == "Disputed"
    idx.apply(ev("DisputeResolved", 4, disputeId=D, claimId=1, outcome=enum("DisputeState", "Dismissed"), votesUphold=0, votesDismiss=2,
                 challengerPaid=0, trainerPaid=5 * 10**16, perVoterShare=0, slashed=0, newChallengeDeadline=1600))
    assert idx.claims[1].state == "Open" and idx.claims[1].challenge_deadline == 1600
    assert idx.verifiers[V3.lower()].challenges_lost == 1


def test_verifier_rows_count_confirmations_challenges_votes_and_earnings():
    rows = {v.address: v for v in story().verifier_rows()}
    assert (rows[V1].confirmations, rows[V1].votes, rows[V1].earned) == (1, 1, 2 * 10**16)
    assert (rows[V3].challenges_won, rows[V3].challenges_lost, rows[V3].earned) == (1, 0, 15 * 10**16)
    assert all(v.stake == 10**18 and v.registered for v in rows.values() if v.address.startswith("0xV"))


def test_curve_is_the_best_as_steps_and_every_claim_and_report_as_a_point():
    curve = story().curve(1, baseline_loss=3_000_000)
    assert curve["best"] == [{"x": 1, "y": 3_000_000}, {"x": 9, "y": 2_500_000}, {"x": 12, "y": 2_500_000}]
    assert [(p["x"], p["outcome"]) for p in curve["points"]] == [(3, "accepted"), (4, "rejected"), (11, "report")]


def test_dashboard_demo_dir_without_a_saved_chain_is_one_clear_error(tmp_path):
    from click.testing import CliRunner

    from arledger.cli import main
    from tests.test_e2e_support import one_line_error

    res = CliRunner().invoke(main, ["dashboard", "--demo", str(tmp_path)])
    one_line_error(res, "deployment.json: missing", "artrain demo")


def test_the_packaged_chart_library_is_the_npm_package_file():
    """The dashboard works offline from package data; the file is Chart.js as npm ships it (package.json)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    packaged = root / "client" / "arledger" / "dashboard" / "static" / "vendor" / "chart.umd.min.js"
    npm = root / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
    assert packaged.read_bytes() == npm.read_bytes()
    assert '"chart.js": "4.6.1"' in (root / "package.json").read_text()


def test_text_written_by_claim_code_is_escaped_in_the_pages():
    """Notes, hypotheses and report texts come from whoever published them: never markup, never script."""
    from arledger.dashboard import app as dash

    templates = dash.make_templates({})
    evil = '</script><script>alert(1)</script><img src=x onerror=alert(2)>'
    idx = story()
    idx.tasks[1].reports[0]["note"] = evil
    task = {"task_id": 1, "name": evil, "description": evil, "metric": "val_bpc", "units": "bpc", "steps": 20,
            "segment_steps": 10, "pool": 0, "reward": 0, "verifier_fee": 0, "min_trainer_stake": 0,
            "min_verifier_stake": 0, "challenge_bond": 0, "quorum": 2, "challenge_window": 1, "voting_window": 1,
            "reveal_window": 1, "min_improvement": 1, "baseline_loss": 3_000_000, "best_claim_id": 1,
            "best_loss": 2_500_000, "claims": 2, "reports": 1, "pending": 0}
    curve = idx.curve(1, 3_000_000)
    curve["points"][0]["outcome"] = evil  # even inside the JSON the chart reads
    html = templates.env.get_template("task.html").render(
        task=task, claims=[], reports=idx.tasks[1].reports, curve=curve, version=1, head=1, partial=False, reorgs=0)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert html.count("</script>") == html.count("<script")  # no script element closed early by the data


def test_a_sealed_task_shows_its_rounds_shards_and_head_to_head_numbers():
    """Sealed tasks (docs/sealed-evaluation.md): a claim is "awaiting shard" until scored, is not a
    point on the curve without a loss, and once scored shows its round and its incumbent's loss on
    the same shard; the task page lists the rounds with the opened shards."""
    from arledger.dashboard import app as dash

    idx = LedgerIndex(ENUMS)
    seal = {"shardRoot": D, "rounds": 2, "roundLength": 3600, "openGrace": 600, "sponsorBond": 10**18}
    shard = str(bytes_cid(b"shard 0"))
    for e in [ev("TaskCreated", 1, taskId=1, sponsor=SPONSOR, params=(), pool=3 * 10**18),
              ev("SealedTaskCreated", 1, taskId=1, seal=seal, start=1_000_000),
              reveal(1, 2, 0), reveal(2, 3, 0, trainer="0xOther")]:
        idx.apply(e)
    assert [c.state for c in idx.claims_of(1)] == ["Sealed", "Sealed"]
    assert idx.curve(1, 3_000_000)["points"] == []
    for e in [ev("ShardOpened", 4, taskId=1, round=0, shardDigest=D, shardCid=cid_to_bytes(shard)),
              ev("ClaimScored", 5, claimId=1, taskId=1, round=0, claimedLoss=2_400_000, incumbentId=0,
                 incumbentLoss=2_900_000, challengeDeadline=1_004_000)]:
        idx.apply(e)
    c = idx.claims[1]
    assert (c.state, c.round, c.incumbent_id, c.incumbent_loss, c.claimed_loss) == ("Open", 0, 0, 2_900_000, 2_400_000)
    rounds = idx.tasks[1].rounds()
    assert [(r["round"], r["ends_at"], bool(r["shard"])) for r in rounds] == [(0, 1_003_600, True), (1, 1_007_200, False)]

    templates = dash.make_templates({})
    task = {"task_id": 1, "name": "sealed", "description": "", "metric": "val_bpc", "units": "bpc", "steps": 20,
            "segment_steps": 10, "pool": 0, "reward": 0, "verifier_fee": 0, "min_trainer_stake": 0,
            "min_verifier_stake": 0, "challenge_bond": 0, "quorum": 2, "challenge_window": 1, "voting_window": 1,
            "reveal_window": 1, "min_improvement": 1, "baseline_loss": 3_000_000, "best_claim_id": 0,
            "best_loss": 3_000_000, "claims": 2, "reports": 0, "pending": 2, "sealed": idx.tasks[1].sealed,
            "rounds": rounds}
    html = templates.env.get_template("task.html").render(
        task=task, claims=[dash._claim_row(c) for c in idx.claims_of(1)], reports=[], curve=idx.curve(1, 3_000_000),
        version=1, head=1, partial=False, reorgs=0)
    assert "sealed: 2 rounds" in html and shard in html and "awaiting shard" in html
    assert "2.900000 (baseline)" in html and "<th>against (same shard)</th>" in html
