"""The ``search`` proposer: offline, deterministic given its seed, history-aware.

It builds every candidate from the code it is given (the current best: exploit) by one
*move*: a hyper-parameter change of ``experiment.json``'s config (learning rate, width,
depth, batch, dropout, weight decay, momentum, heads) or one of a few code edits of
``train.py`` (a warm-up + cosine learning-rate schedule, AdamW's betas), and ranks them:

    score = prior + 1.0 x successes(direction) - 1.5 x failures(direction) + jitter

A *direction* is what a move pushes ("lr:+", "layers:-", "schedule:cosine"); its successes
and failures are read from every agent's tags in the history (an experiment that beat
what it built on, or did not), so a direction that failed for anyone is backed off from
and one that worked is pushed further. A candidate whose code CID is on record is never
proposed; neither is one refused earlier this iteration. The jitter comes from a
``random.Random`` seeded by (seed, agent address, base code): the same seed, account and
history give the same proposal, and two agents with one seed still explore apart.

A code edit applies only where its anchor is found (the templates' ``opt.step()`` line,
an ``AdamW(`` call): a train.py rewritten by someone else simply offers fewer moves.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Callable

from arledger.agent.proposal import Code, Proposal, ProposalContext, Refusal
from arledger.errors import ProposalError
from arledger.micro import fmt

# The jitter is wide enough to shuffle the top few priors between agents: parallel agents on
# one base then mostly try different moves instead of racing to publish the same one.
SUCCESS_WEIGHT, FAILURE_WEIGHT, JITTER = 1.0, 1.5, 1.2


@dataclass(frozen=True)
class Move:
    name: str  # "lr x2"
    direction: str  # "lr:+"
    prior: float  # how promising it is before anything is known
    apply: Callable[[Code, ProposalContext], Code | None]  # None: not applicable to this code
    why: str  # the hypothesis' reasoning


def _scale(key: str, factor: float, ndigits: int = 6) -> Callable:
    def apply(code: Code, ctx: ProposalContext) -> Code | None:
        v = code.config.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v == 0:
            return None
        return code.with_config(**{key: round(float(v) * factor, ndigits)})
    return apply


def _set(key: str, value: float) -> Callable:
    def apply(code: Code, ctx: ProposalContext) -> Code | None:
        v = code.config.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v == value:
            return None
        return code.with_config(**{key: value})
    return apply


def _int_step(key: str, factor: float = 1.0, add: int = 0, lowest: int = 1) -> Callable:
    """An integer config value scaled and/or shifted; widths stay multiples of ``heads``."""
    def apply(code: Code, ctx: ProposalContext) -> Code | None:
        cfg = code.config
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            return None
        new = int(round(v * factor)) + add
        heads = cfg.get("heads") if key in ("d_model", "width") else None
        if isinstance(heads, int) and heads > 0:
            new = max(heads, heads * round(new / heads))
        if key == "heads" and (cfg.get("d_model", 0) % max(new, 1)):
            return None
        if new < lowest or new == v:
            return None
        return code.with_config(**{key: new})
    return apply


_STEP_LINE = re.compile(r"^(?P<indent>[ \t]+)(?P<opt>\w+)\.step\(\)[ \t]*$", re.M)
_SCHEDULE = '''

def _agent_schedule(opt):
    """Linear warm-up, then cosine decay to 10% of the base learning rate (artrain agent's edit).
    The counter lives in the optimizer's param_groups, which every checkpoint saves, so a replay
    from any boundary continues the same schedule."""
    for g in opt.param_groups:
        base = g.setdefault("agent_base_lr", g["lr"])
        t = g["agent_step"] = g.get("agent_step", 0) + 1
        if t <= {warmup}:
            g["lr"] = base * t / {warmup}
        else:
            progress = min(1.0, (t - {warmup}) / {decay})
            g["lr"] = base * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))
'''


def _schedule(code: Code, ctx: ProposalContext) -> Code | None:
    src = code.train_py
    m = _STEP_LINE.search(src)
    if "_agent_schedule" in src or not m:
        return None
    warmup = max(1, ctx.steps // 20)
    src = src[:m.start()] + f"{m['indent']}_agent_schedule({m['opt']})\n" + src[m.start():]
    if not re.search(r"^import math\s*$", src, re.M):
        future = re.search(r"^from __future__ import[^\n]*\n", src, re.M)
        at = future.end() if future else 0
        src = src[:at] + "import math\n" + src[at:]
    src = src.rstrip("\n") + "\n" + _SCHEDULE.format(warmup=warmup, decay=max(1, ctx.steps - warmup))
    return Code(src, code.spec)


_ADAMW = re.compile(r"torch\.optim\.AdamW\((?P<args>[^\n]*)\)$", re.M)


def _betas(code: Code, ctx: ProposalContext) -> Code | None:
    m = _ADAMW.search(code.train_py)
    if not m or "betas" in m["args"]:
        return None
    src = code.train_py[:m.start()] + f"torch.optim.AdamW({m['args']}, betas=(0.9, 0.95))" + code.train_py[m.end():]
    return Code(src, code.spec)


MOVES: tuple[Move, ...] = (
    Move("dropout 0", "dropout:-", 3.0, _set("dropout", 0.0),
         "a short budget under-fits rather than over-fits, so dropout only slows learning"),
    Move("lr x2", "lr:+", 2.5, _scale("lr", 2.0), "the learning rate is below what the model tolerates in this budget"),
    Move("warm-up + cosine schedule", "schedule:cosine", 2.0, _schedule,
         "a warm-up lets a higher rate start stably and the cosine decay anneals the last steps"),
    Move("layers +1", "layers:+", 1.5, _int_step("layers", add=1), "one more layer adds capacity within the budget"),
    Move("width x1.25", "width:+", 1.4, _int_step("d_model", 1.25), "a wider model fits more within the budget"),
    Move("width x1.25", "width:+", 1.4, _int_step("width", 1.25), "a wider model fits more within the budget"),
    Move("AdamW betas (0.9, 0.95)", "betas:fast", 1.2, _betas,
         "a shorter second-moment memory adapts faster in a short run"),
    Move("batch x2", "batch:+", 1.0, _int_step("batch", 2.0), "less gradient noise per step"),
    Move("lr x0.5", "lr:-", 1.0, _scale("lr", 0.5), "the learning rate is too high for stable training"),
    Move("dropout x0.5", "dropout:-", 0.8, _scale("dropout", 0.5, 4), "less regularisation for a short run"),
    Move("weight decay x0.1", "weight_decay:-", 0.6, _scale("weight_decay", 0.1, 8), "weight decay slows fitting"),
    Move("weight decay x10", "weight_decay:+", 0.4, _scale("weight_decay", 10.0, 8), "more regularisation generalises"),
    Move("momentum 0.95", "momentum:+", 0.6, _set("momentum", 0.95), "more momentum smooths the updates"),
    Move("momentum 0.8", "momentum:-", 0.4, _set("momentum", 0.8), "less momentum reacts faster"),
    Move("heads x2", "heads:+", 0.5, _int_step("heads", 2.0), "more, smaller attention heads"),
    Move("layers -1", "layers:-", 0.3, _int_step("layers", add=-1), "a shallower model trains faster per step"),
    Move("batch x0.5", "batch:-", 0.3, _int_step("batch", 0.5), "more, noisier updates per unit of work"),
)


def direction_record(ctx: ProposalContext) -> dict[str, tuple[int, int]]:
    """(successes, failures) per direction, from every tagged experiment in the history."""
    out: dict[str, tuple[int, int]] = {}
    for rec in ctx.history:
        tag, beat = rec.tag, rec.beat_parent
        if not tag or beat is None or not tag.get("direction"):
            continue
        s, f = out.get(tag["direction"], (0, 0))
        out[tag["direction"]] = (s + 1, f) if beat else (s, f + 1)
    return out


class SearchProposer:
    name = "search"

    def __init__(self, seed: int = 0, moves: tuple[Move, ...] = MOVES):
        self.seed = int(seed)
        self.moves = moves

    def ranked(self, ctx: ProposalContext) -> list[tuple[float, Move, Code]]:
        """Every applicable, unrecorded candidate, best first."""
        record = direction_record(ctx)
        digest = hashlib.sha256(f"{self.seed}|{ctx.agent.lower()}|{ctx.base.cid}".encode()).digest()
        rng = random.Random(digest)
        out = []
        for move in self.moves:
            jitter = rng.random() * JITTER  # drawn for every move, applicable or not: stable ranks
            code = move.apply(ctx.base, ctx)
            if code is None or ctx.repeats(code):
                continue
            s, f = record.get(move.direction, (0, 0))
            out.append((move.prior + SUCCESS_WEIGHT * s - FAILURE_WEIGHT * f + jitter, move, code))
        out.sort(key=lambda t: -t[0])
        return out

    def propose(self, ctx: ProposalContext, refused: list[Refusal]) -> Proposal:
        skip = {r.proposal.code.cid for r in refused if r.proposal is not None} | set(ctx.refused_before)
        for score, move, code in self.ranked(ctx):
            if code.cid in skip:
                continue
            s, f = direction_record(ctx).get(move.direction, (0, 0))
            memory = f" (this direction: {s} success(es), {f} failure(s) on record)" if s or f else ""
            hypothesis = (f"{move.name} on {ctx.base_ref}: {move.why}; expect {ctx.metric} below "
                          f"{fmt(ctx.base_loss_micro, 4)}{memory}.")
            return Proposal(code, hypothesis, self.name, move=move.name, direction=move.direction)
        raise ProposalError(f"search: every move from {ctx.base_ref} is on record or was refused "
                            f"({len(refused)} refused this iteration)")
