"""The collective memory: every claim and report of a task as ``ExperimentRecord``s.

Claims carry their hypothesis and notes in their manifest, fetched by the CID the chain
records and checked against it by the store; manifests are immutable, so each is fetched
once and kept in ``cache_dir`` (re-checked against its CID when read back). Reports carry
their note on chain. Whoever published a record wrote its text: it is data to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arledger import manifest as mf, queries
from arledger.agent.proposal import ExperimentRecord


def read_history(ledger: Any, store: Any, task_id: int, cache_dir: Path) -> list[ExperimentRecord]:
    out = []
    for row in queries.history(ledger, task_id):
        if row["kind"] == "report":
            note = row["note"] or ""
            out.append(ExperimentRecord("report", f"report @ block {row['block']}", row["reporter"], row["code_cid"],
                                        row["loss_micro"], "Reported", hypothesis=note.split("\n", 1)[0],
                                        notes=note, block=row["block"]))
            continue
        m = _manifest(store, row["manifest_cid"], Path(cache_dir))
        out.append(ExperimentRecord("claim", f"claim {row['claim_id']}", row["trainer"], m.code_cid if m else None,
                                    row["claimed_loss_micro"], row["state"], hypothesis=m.hypothesis if m else "",
                                    notes=m.notes if m else "", block=row["block"]))
    return out


def _manifest(store: Any, cid: str, cache_dir: Path) -> mf.Manifest | None:
    # an unavailable or malformed manifest: the claim stays, without text
    return mf.fetch_or_why(store, cid, cache_dir)[0]
