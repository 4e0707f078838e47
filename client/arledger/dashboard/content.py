"""What the dashboard reads besides events: task details from chain views, and the
TaskSpecs, manifests and code the events point at, fetched from the store by CID (the
store checks every byte against it). Everything fetched by CID is immutable, so it is
cached for the life of the server; a CID the store does not have is shown as missing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from arledger import manifest as mf, taskspec
from arledger.agent.proposal import Code

MAX_CODE_BYTES = 4 << 20


class Content:
    def __init__(self, ledger: Any, store: Any):
        self.ledger, self.store = ledger, store
        self._specs: dict[int, Any] = {}
        self._manifests: dict[str, tuple[Any, str | None]] = {}
        self._codes: dict[str, tuple[Any, str | None]] = {}

    def task(self, task_id: int):
        return self.ledger.task(task_id)  # pool, best and terms change: always fresh

    def now(self) -> int:
        """The chain's time (the latest block's timestamp): deadlines are read against it."""
        return self.ledger.block_timestamp()

    def spec(self, task_id: int):
        if task_id not in self._specs:
            try:
                self._specs[task_id] = taskspec.fetch(self.store, self.task(task_id).spec_digest)
            except Exception:  # an unavailable spec: the page says so
                return None
        return self._specs[task_id]

    def manifest(self, cid: str) -> tuple[mf.Manifest | None, str | None]:
        if cid not in self._manifests:
            m, why = mf.fetch_or_why(self.store, cid)
            if m is None:  # missing or malformed: part of the answer, not a crash (tried again next time)
                return None, why
            self._manifests[cid] = (m, None)
        return self._manifests[cid]

    def code(self, cid: str):
        """The ``Code`` (train.py + experiment.json) of a code CID, or (None, why)."""
        if cid not in self._codes:
            try:
                with tempfile.TemporaryDirectory(prefix="arledger-dash-") as tmp:
                    self.store.get_dir(cid, Path(tmp) / "code", max_size=MAX_CODE_BYTES)
                    self._codes[cid] = (Code.from_dir(Path(tmp) / "code"), None)
            except Exception as exc:
                return None, f"{type(exc).__name__}: {exc}"
        return self._codes[cid]

    def parent_code_cid(self, claim, claims: dict) -> tuple[str | None, str]:
        """The code a claim changed: its parent claim's, or the task's baseline code."""
        if claim.parent_id and claim.parent_id in claims:
            return claims[claim.parent_id].code_cid, f"claim {claim.parent_id}"
        spec = self.spec(claim.task_id)
        return (spec.baseline_code_cid if spec else None), "the task's baseline"
