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

from arledger import manifest as mf, taskspec
from arledger.chain.ledger import Ledger
from arledger.chain.units import loss_fields



def _manifest_of(store: Any, digest: bytes) -> tuple[str, mf.Manifest | None, str | None]:
    from arstore import digest_to_cid
    from arstore.errors import StoreError

    cid = digest_to_cid(digest)
    try:
        return cid, mf.loads(bytes(store.cat(cid, max_size=mf.MAX_BYTES)), f"manifest {cid}"), None
    except (StoreError, Exception) as exc:  # an unavailable manifest is part of the answer
        return cid, None, f"{type(exc).__name__}: {exc}"


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
    an earlier download made, an empty or new one, or any with ``force``)."""
    from arledger import outdir

    info = best_model(ledger, store, task_id)
    dest = Path(dest)
    outdir.claim(dest, "artrain best --download", force=force)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as tmp:
        code = Path(tmp) / "code"
        store.get_dir(info["code_cid"], code)
        files = {"code": dest / "code"}
        if info.get("weights_cid"):
            store.get_file(info["weights_cid"], Path(tmp) / "weights.safetensors")
            files["weights"] = dest / "weights.safetensors"
        if info.get("manifest_cid"):
            (Path(tmp) / "manifest.json").write_bytes(bytes(store.cat(info["manifest_cid"], max_size=mf.MAX_BYTES)))
            files["manifest"] = dest / "manifest.json"
        for name, target in files.items():
            src = Path(tmp) / ("weights.safetensors" if name == "weights" else
                               "manifest.json" if name == "manifest" else "code")
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            src.rename(target)
    info["downloaded"] = {k: str(v) for k, v in files.items()}
    return info


def claim_status(ledger: Ledger, claim_id: int) -> dict:
    c = ledger.claim(claim_id)
    reveal = ledger.claim_revealed_event(claim_id)
    from arstore import digest_to_cid

    out = {"claim_id": claim_id, "task_id": c.task_id, "trainer": c.trainer, "parent_id": c.parent_id,
           "state": ledger.claim_state(claim_id), "confirmations": c.confirmations,
           "quorum": ledger.task(c.task_id).quorum, **loss_fields("claimed_loss", c.claimed_loss),
           "stake": c.stake, "segments": c.num_segments,
           "challenge_deadline": c.challenge_deadline, "now": ledger.block_timestamp(),
           "manifest_cid": digest_to_cid(reveal.manifest_digest), "code_cid": reveal.code_cid,
           "merkle_root": "0x" + c.merkle_root.hex(), "open_dispute": c.open_dispute}
    if c.open_dispute:
        d = ledger.dispute(c.open_dispute)
        out["dispute"] = {"id": d.dispute_id, "kind": d.kind, "segment": d.segment, "state": d.state,
                          "challenger": d.challenger, "votes_uphold": d.votes_uphold,
                          "votes_dismiss": d.votes_dismiss, "voting_deadline": d.voting_deadline}
    return out


def history(ledger: Ledger, task_id: int, from_block: int | None = None) -> list[dict]:
    """Every claim and experiment report of a task, in chain order (failed experiments included)."""
    from arstore import cid_from_bytes, digest_to_cid

    rows: dict[int, dict] = {}
    out: list[dict] = []
    names = ["ClaimRevealed", "ClaimFinalized", "ClaimChallenged", "ExperimentReported"]
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
        elif ev.name == "ClaimChallenged" and a["claimId"] in rows:
            rows[a["claimId"]]["challenges"] += 1
        elif ev.name == "ClaimFinalized" and a["claimId"] in rows:
            rows[a["claimId"]].update(improved=a["improved"], reward=a["reward"])
    for cid, row in rows.items():
        row["state"] = ledger.claim_state(cid)
    return out
