"""The ``llm`` proposer: any OpenAI-compatible chat-completions endpoint writes the change.

It sends the brief (``brief.md``, editable: ``--brief FILE``; in the spirit of
autoresearch's program.md) with the task's numbers filled in, then the current best
``train.py`` and ``experiment.json`` and a digest of the history, and reads back a
hypothesis and either a whole ``train.py``, a unified diff, or config changes. A refused
try is told back to the model in the same conversation, so its next try can fix it.

Nothing the reply says is trusted: it is parsed here (``parse_reply``), then checked by
the agent before anything runs (arledger.agent.checks). A timeout, an HTTP failure, a
malformed reply and an oversized reply are each one ``ProposalError`` naming the
endpoint; the agent records it and carries on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import openai
import whatthepatch
from whatthepatch.exceptions import WhatThePatchException

from arledger.agent.proposal import Code, Proposal, ProposalContext, Refusal
from arledger.errors import ProposalError
from arledger.micro import fmt
from arledger.runner.budget import Budget

BRIEF = Path(__file__).with_name("brief.md")
MAX_REPLY_BYTES = 256 * 1024  # above any train.py a task allows by default (256 KiB of code)
HISTORY_LINES = 40  # the most recent records sent, one line each
_BLOCK = re.compile(r"```(?P<lang>[A-Za-z]*)[^\n]*\n(?P<body>.*?)```", re.S)


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key: str = "none"  # local servers take any key; the openai client insists on one
    timeout: float = 120.0
    max_reply_bytes: int = MAX_REPLY_BYTES
    brief: Path = BRIEF
    max_tokens: int | None = None


class LLMProposer:
    name = "llm"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.brief = Path(settings.brief).read_text()
        self._client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "none",
                                     timeout=settings.timeout, max_retries=0)
        self._replies: dict[str, str] = {}  # code CID -> the reply that proposed it (this iteration's)

    def propose(self, ctx: ProposalContext, refused: list[Refusal]) -> Proposal:
        messages = [{"role": "system", "content": render_brief(self.brief, ctx)},
                    {"role": "user", "content": prompt(ctx)}]
        for r in refused:
            if r.proposal is not None and r.proposal.code.cid in self._replies:
                messages.append({"role": "assistant", "content": self._replies[r.proposal.code.cid]})
            messages.append({"role": "user", "content": f"That proposal was refused before training: {r.reason}. "
                                                        "Propose something else, in the same format."})
        text = self._ask(messages)
        try:
            code, hypothesis = parse_reply(text, ctx.base)
        except ProposalError as exc:
            raise ProposalError(f"llm: {self.settings.base_url} replied with {exc}") from None
        self._replies[code.cid] = text
        return Proposal(code, hypothesis, self.name)

    def _ask(self, messages: list[dict]) -> str:
        s = self.settings
        where = f"llm: {s.base_url} (model {s.model})"
        try:
            resp = self._client.chat.completions.create(model=s.model, messages=messages,
                                                        **({"max_tokens": s.max_tokens} if s.max_tokens else {}))
        except openai.APITimeoutError:
            raise ProposalError(f"{where}: no reply within {s.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise ProposalError(f"{where}: cannot connect ({exc})") from None
        except openai.APIStatusError as exc:
            raise ProposalError(f"{where}: HTTP {exc.status_code}: {str(exc.message)[:200]}") from None
        except (openai.OpenAIError, ValueError) as exc:  # a body that is not a chat completion
            raise ProposalError(f"{where}: not a chat-completions reply ({type(exc).__name__}: {str(exc)[:200]})") from None
        try:
            text = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            text = None
        if not isinstance(text, str) or not text.strip():
            raise ProposalError(f"{where}: the reply has no message content")
        size = len(text.encode())
        if size > s.max_reply_bytes:
            raise ProposalError(f"{where}: the reply is {size} bytes, more than the {s.max_reply_bytes} allowed")
        return text


def render_brief(brief: str, ctx: ProposalContext) -> str:
    b = ctx.budget
    return Template(brief).safe_substitute(
        metric=ctx.metric, units=ctx.units, best_loss=fmt(ctx.best_loss_micro),
        epsilon=fmt(ctx.min_improvement_micro), steps=ctx.steps, segment_steps=ctx.segment_steps,
        flops_per_step=b.get("flops_per_step", "unlimited"), startup_flops=b.get("startup_flops", "unlimited"),
        max_params=b.get("max_params", "unlimited"), max_code_bytes=b.get("max_code_bytes", "unlimited"),
        time_rule=Budget.from_dict({**b, "steps": ctx.steps, "segment_steps": ctx.segment_steps}).rule())


def prompt(ctx: ProposalContext) -> str:
    lines = [f"Task {ctx.task_id}. You build on {ctx.base_ref}: {ctx.metric} {fmt(ctx.base_loss_micro)}.", "",
             "Current train.py:", "```python", ctx.base.train_py.rstrip("\n"), "```", "",
             "Current experiment.json:", "```json", ctx.base.spec_text.rstrip("\n"), "```", "",
             f"History ({len(ctx.history)} experiments on record; the most recent {HISTORY_LINES}):"]
    for r in ctx.history[-HISTORY_LINES:]:
        hyp = r.hypothesis.replace("\n", " ")[:240]
        lines.append(f"- {r.ref} [{r.state}] {ctx.metric} {fmt(r.loss_micro)}: {hyp or '(no hypothesis)'}")
    if not ctx.history:
        lines.append("- (none yet)")
    return "\n".join(lines)


def parse_reply(text: str, base: Code) -> tuple[Code, str]:
    """(new code, hypothesis) from a reply, or ``ProposalError`` saying what is missing."""
    m = re.search(r"HYPOTHESIS:\s*(?P<h>.+?)(?:\n\s*\n|\n```|$)", text, re.S)
    if not m or not m["h"].strip():
        raise ProposalError("a malformed reply: no 'HYPOTHESIS:' paragraph")
    hypothesis = " ".join(m["h"].split())
    blocks = [(b["lang"].lower(), b["body"]) for b in _BLOCK.finditer(text)]
    code = base
    diffs = [body for lang, body in blocks if lang in ("diff", "patch")]
    pythons = [body for lang, body in blocks if lang in ("python", "py")]
    configs = [body for lang, body in blocks if lang == "json"]
    if diffs:
        code = _apply_diff(diffs[0], code)
    elif pythons:
        code = Code(pythons[0], code.spec)
    if configs:
        try:
            changes = json.loads(configs[0])
        except json.JSONDecodeError as exc:
            raise ProposalError(f"a malformed reply: its json block is not JSON ({exc})") from None
        if not isinstance(changes, dict):
            raise ProposalError("a malformed reply: its json block is not an object")
        code = Code(code.train_py, changes) if "config" in changes else code.with_config(**changes)
    if code == base and code.spec_text == base.spec_text:
        raise ProposalError("a malformed reply: no ```python, ```diff or ```json block that changes the code")
    return code, hypothesis


def _apply_diff(text: str, base: Code) -> Code:
    files = {"train.py": base.train_py, "experiment.json": base.spec_text}
    try:
        patches = list(whatthepatch.parse_patch(text))
        if not patches:
            raise ProposalError("a malformed reply: its diff block holds no unified diff")
        for p in patches:
            name = Path((p.header.new_path if p.header else "") or "").name
            if name not in files:
                raise ProposalError(f"a malformed reply: its diff changes {name or 'an unnamed file'!r}, "
                                    "only train.py and experiment.json may change")
            files[name] = "\n".join(whatthepatch.apply_diff(p, files[name])) + "\n"
    except WhatThePatchException as exc:
        raise ProposalError(f"a diff that does not apply to the current code ({exc})") from None
    try:
        spec = json.loads(files["experiment.json"])
    except json.JSONDecodeError as exc:
        raise ProposalError(f"a diff that leaves experiment.json invalid ({exc})") from None
    return Code(files["train.py"], spec)

