"""The lab notebook: one JSON line per finished iteration, and a Markdown page made from them.

``notebook.jsonl`` is append-only and the only source; ``NOTEBOOK.md`` is rewritten from it
after every append (so it can never disagree). An entry is appended once: the agent
checks the notebook for the iteration's number before appending, so a crash between the
append and the iteration's ``done`` mark does not write it twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from arledger.files import atomic_write

JSONL, MARKDOWN = "notebook.jsonl", "NOTEBOOK.md"


class Notebook:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / JSONL

    def entries(self) -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a crash mid-append: the iteration is redone
                continue
        return out

    def has(self, iteration: int) -> bool:
        return any(e.get("iteration") == iteration for e in self.entries())

    def append(self, entry: dict) -> None:
        if self.has(entry["iteration"]):
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.path, "a") as f:
            if f.tell() and not self.path.read_bytes().endswith(b"\n"):
                f.write("\n")  # after a torn line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        atomic_write(self.directory / MARKDOWN, render(self.entries()).encode())


def render(entries: list[dict]) -> str:
    out = ["# Lab notebook", ""]
    for e in entries:
        loss = f"{e['loss']:.6f}" if e.get("loss") is not None else "-"
        out += [f"## Iteration {e['iteration']}: {e['outcome']}" + (f" (claim {e['claim_id']})" if e.get("claim_id") else ""),
                "", f"- proposer: {e.get('proposer')}" + (f", move: {e['move']}" if e.get("move") else ""),
                f"- built on: {e.get('base_ref')} ({e.get('base_loss', 0):.6f}); best on chain {e.get('best_loss', 0):.6f}",
                f"- {e.get('metric', 'loss')}: {loss}", f"- hypothesis: {e.get('hypothesis') or '-'}"]
        if e.get("report_tx"):
            out.append(f"- report: tx {e['report_tx']}")
        if e.get("code_cid"):
            out.append(f"- code: {e['code_cid']}")
        for r in e.get("refused") or []:
            out.append(f"- refused before training: {r['reason']}")
        if e.get("error"):
            out.append(f"- error: {e['error']}")
        if e.get("diff"):
            out += ["", "```diff", e["diff"].rstrip("\n"), "```"]
        out.append("")
    return "\n".join(out)
