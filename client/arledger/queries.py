"""Read-only questions about the ledger: the best model, a claim's status, a task's history.

The chain stores ids, states and digests; the CIDs of code and manifest are in the
``ClaimRevealed`` events and the rest is in the (verified) manifest. These helpers
join the three so a user or an agent gets one answer.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from arledger import manifest as mf, outdir, seal_rounds, taskspec
from arledger.chain.ledger import Ledger
from arledger.chain.units import loss_fields
from arledger.runner.experiment import CODE_FILES
from arstore import cid_from_bytes, digest_to_cid


def _manifest_of(store: Any, digest: bytes) -> tuple[str, mf.Manifest | None, str | None]:
    cid = str(digest_to_cid(digest))
    return (cid, *mf.fetch_or_why(store, cid))  # an unavailable manifest is part of the answer


def best_model(ledger: Ledger, store: Any, task_id: int) -> dict:
    task = ledger.task(task_id)
    spec = taskspec.fetch(store, task.spec_digest)
    claim_id, loss = ledger.best_claim(task_id)
    out: dict[str, Any] = {"task_id": task_id, "metric": spec.evaluation["metric"],
                           "units": spec.evaluation["units"], "claim_id": claim_id,
                           **loss_fields("loss", loss), **loss_fields("baseline_loss", task.baseline_loss)}
    if claim_id == 0:
        out.update(trainer=None, code_cid=spec.baseline_code_cid, manifest_cid=None, weights_cid=None,
                   note="no accepted improvement yet: the best is the untrained baseline")
        return out
    claim = ledger.claim(claim_id)
    reveal = ledger.claim_revealed_event(claim_id)
    cid, m, err = _manifest_of(store, reveal.manifest_digest)
    out.update(trainer=claim.trainer, code_cid=reveal.code_cid, manifest_cid=cid,
               weights_cid=m.final_weights_cid if m else None, hypothesis=m.hypothesis if m else None,
               revealed_block=reveal.block_number)
    if err:
        out["manifest_error"] = err
    return out


def download_best(ledger: Ledger, store: Any, task_id: int, dest: Path, force: bool = False) -> dict:
    """Fetch (and verify, by CID) the best model's code and weights into ``dest`` (a directory
    an earlier download made, an empty or new one, or any with ``force``), and the task's
    pinned harness beside them (``harness/``: ``artrain run DEST/code --harness DEST/harness``).

    Of the code only ``train.py`` and ``experiment.json`` are kept: a claim's code CID may name
    a directory with more in it (a ``harness/harness.py`` that a later ``artrain run`` of the
    download would load as its harness), and nothing else of it is ever run; what was left out
    is listed under ``ignored``."""
    info = best_model(ledger, store, task_id)
    spec = taskspec.fetch(store, ledger.task(task_id).spec_digest)
    dest = Path(dest)
    outdir.claim(dest, "artrain best --download", force=force)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as tmp:
        fetched, code = Path(tmp) / "fetched", Path(tmp) / "code"
        store.get_dir(info["code_cid"], fetched)
        code.mkdir()
        for name in CODE_FILES:
            if (fetched / name).is_file() and not (fetched / name).is_symlink():
                shutil.copyfile(fetched / name, code / name)
        info["ignored"] = sorted(str(p.relative_to(fetched)) for p in fetched.rglob("*")
                                 if not p.is_dir() and str(p.relative_to(fetched)) not in CODE_FILES)
        store.get_dir(spec.harness_cid, Path(tmp) / "harness")
        files = {"code": dest / "code", "harness": dest / "harness"}
        if info.get("weights_cid"):
            store.get_file(info["weights_cid"], Path(tmp) / "weights.safetensors")
            files["weights"] = dest / "weights.safetensors"
        if info.get("manifest_cid"):
            (Path(tmp) / "manifest.json").write_bytes(bytes(store.cat(info["manifest_cid"], max_size=mf.MAX_BYTES)))
            files["manifest"] = dest / "manifest.json"
        for name, target in files.items():
            src = Path(tmp) / {"weights": "weights.safetensors", "manifest": "manifest.json"}.get(name, name)
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            src.rename(target)
    info["downloaded"] = {k: str(v) for k, v in files.items()}
    return info


def claim_status(ledger: Ledger, claim_id: int) -> dict:
    c = ledger.claim(claim_id)
    reveal = ledger.claim_revealed_event(claim_id)
    task = ledger.task(c.task_id)

    out = {"claim_id": claim_id, "task_id": c.task_id, "trainer": c.trainer, "parent_id": c.parent_id,
           "state": ledger.claim_state(claim_id), "confirmations": c.confirmations,
           "quorum": task.quorum, **loss_fields("claimed_loss", c.claimed_loss),
           "stake": c.stake, "segments": c.num_segments,
           "challenge_deadline": c.challenge_deadline, "now": ledger.block_timestamp(),
           "manifest_cid": digest_to_cid(reveal.manifest_digest), "code_cid": reveal.code_cid,
           "merkle_root": "0x" + c.merkle_root.hex(), "open_dispute": c.open_dispute}
    if ledger.seal(c.task_id).sealed:
        cs = ledger.claim_seal(claim_id)
        rs = rounds_of(ledger, c.task_id)["rounds"][cs.round]
        out["sealed"] = {"round": cs.round, "round_state": rs["state"], "round_ends_at": rs["ends_at"],
                         "open_deadline": rs["open_deadline"], "shard_cid": rs.get("shard_cid"),
                         "scored": cs.scored, "incumbent_id": cs.incumbent_id,
                         **loss_fields("incumbent_loss", cs.incumbent_loss if cs.scored else None)}
    out["expiry_warning"] = expiry_warning(out, task.challenge_window)
    if c.open_dispute:
        d = ledger.dispute(c.open_dispute)
        out["dispute"] = {"id": d.dispute_id, "kind": d.kind, "segment": d.segment, "state": d.state,
                          "challenger": d.challenger, "votes_uphold": d.votes_uphold,
                          "votes_dismiss": d.votes_dismiss, "voting_deadline": d.voting_deadline}
    return out


def expiry_warning(status: dict, challenge_window: int) -> str | None:
    """A sentence when an open claim is in the last quarter of its challenge window without its
    quorum (``status``: ``claim_status``'s fields): unless verifiers act, it expires, its stake
    back and no reward. None otherwise. The one rule for `artrain status`, the agent and the
    dashboard (the README's "A trainer" says what a trainer can do)."""
    left = status["challenge_deadline"] - status["now"]
    if status["state"] != "Open" or status["confirmations"] >= status["quorum"] or left < 0:
        return None
    if left > challenge_window // 4:
        return None
    return (f"claim {status['claim_id']} has {status['confirmations']}/{status['quorum']} confirmations with "
            f"{left}s of its challenge window left: unless verifiers act it expires (stake back, no reward); "
            "run `arverify watch` yourself or ask the task's verifiers")


def rounds_of(ledger: Ledger, task_id: int) -> dict | None:
    """A sealed task's rounds as commands show them (None for an open task)."""
    seal = ledger.seal(task_id)
    if not seal.sealed:
        return None
    _, status = seal_rounds.rounds(ledger, task_id)
    now = ledger.block_timestamp()
    return {"now": now, "current": seal.round_at(now), "bond": seal.bond, "start": seal.start,
            "round_length": seal.round_length, "open_grace": seal.open_grace,
            "rounds": [s.to_dict(now) for s in status]}


def history(ledger: Ledger, task_id: int, from_block: int | None = None) -> list[dict]:
    """Every claim and experiment report of a task, in chain order (failed experiments included)."""
    rows: dict[int, dict] = {}
    out: list[dict] = []
    names = ["ClaimRevealed", "ClaimScored", "ClaimFinalized", "ClaimChallenged", "ExperimentReported"]
    start = ledger.deploy_block if from_block is None else from_block
    for ev in ledger.events(start, ledger.block_number(), names):
        a = ev.args
        if ev.name == "ExperimentReported" and a["taskId"] == task_id:
            out.append({"kind": "report", "block": ev.block_number, "reporter": a["reporter"],
                        **loss_fields("loss", a["loss"]), "code_cid": cid_from_bytes(a["codeCid"]) if a["codeCid"] else None,
                        "manifest_cid": digest_to_cid(a["manifestDigest"]), "note": a["note"]})
        elif ev.name == "ClaimRevealed" and a["taskId"] == task_id:
            row = {"kind": "claim", "claim_id": a["claimId"], "block": ev.block_number, "trainer": a["trainer"],
                   "parent_id": a["parentId"], **loss_fields("claimed_loss", a["claimedLoss"]),
                   "manifest_cid": digest_to_cid(a["manifestDigest"]), "state": "Open", "improved": None,
                   "reward": 0, "challenges": 0}
            rows[a["claimId"]] = row
            out.append(row)
        elif ev.name == "ClaimScored" and a["claimId"] in rows:  # a sealed claim's losses on its round's shard
            rows[a["claimId"]].update(round=a["round"], incumbent_id=a["incumbentId"],
                                      **loss_fields("claimed_loss", a["claimedLoss"]),
                                      **loss_fields("incumbent_loss", a["incumbentLoss"]))
        elif ev.name == "ClaimChallenged" and a["claimId"] in rows:
            rows[a["claimId"]]["challenges"] += 1
        elif ev.name == "ClaimFinalized" and a["claimId"] in rows:
            rows[a["claimId"]].update(improved=a["improved"], reward=a["reward"])
    for cid, row in rows.items():
        row["state"] = ledger.claim_state(cid)
    return out
