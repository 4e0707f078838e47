"""`artrain task`: the group, and `task show`; the sponsor's commands that build, measure and
open (create, heldout, noise, reveal) are in ``arledger.cli.sponsor_cmds``, loaded when they run."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from arledger import queries, taskspec
from arledger.chain.units import format_amount, loss_fields
from arledger.cli.commands import Entry, LazyGroup
from arledger.cli.common import chain_options, context_from, emit, json_option, open_store, span, store_option

SUBCOMMANDS = [
    Entry("create", "arledger.cli.sponsor_cmds", "task_create"),
    Entry("heldout", "arledger.cli.sponsor_cmds", "task_heldout"),
    Entry("noise", "arledger.cli.sponsor_cmds", "task_noise"),
    Entry("reveal", "arledger.cli.sponsor_cmds", "task_reveal"),
    Entry("show", "arledger.cli.task_cmds", "task_show"),
]


@click.group("task", cls=LazyGroup, lazy=lambda: SUBCOMMANDS)
def task() -> None:
    """Create and inspect tasks (the sponsor's side).

    \b
    Examples:
      artrain task create --template charlm --reward 1eth --pool 3eth --measure-noise 5 --dev-account 0
      artrain task show 1
      artrain task heldout digits --rounds 3 --out private.bin   # then: task create --heldout private.bin
      artrain task reveal 1 --watch                              # a sealed task: open each round's shard
    """


@click.command("show")
@click.argument("task_id", type=click.IntRange(min=1))
@store_option
@chain_options
@json_option
def task_show(task_id, store_spec, as_json, **chain):
    """A task's terms, pool, best claim and TaskSpec.

    \b
    Examples:
      artrain task show 1
      artrain task show 1 --json | jq .spec.budget
    """
    ctx = context_from(chain, need_account=False)
    t = ctx.ledger.task(task_id)
    spec = taskspec.fetch(open_store(store_spec), t.spec_digest)
    data = {**asdict(t), "spec_digest": "0x" + t.spec_digest.hex(), "spec": json.loads(spec.to_bytes()),
            **loss_fields("best_loss", t.best_loss), **loss_fields("baseline_loss", t.baseline_loss),
            **loss_fields("min_improvement", t.min_improvement), "sealed": queries.rounds_of(ctx.ledger, task_id),
            "time_rule": spec.work_budget.rule()}
    emit(data, as_json, lambda d: [
        f"task {task_id}: {spec.name} ({spec.evaluation['metric']}, {spec.evaluation['units']})",
        f"pool {format_amount(t.pool)}  reward {format_amount(t.reward_per_improvement)}  quorum {t.quorum}",
        f"best claim {t.best_claim_id or '-'} loss {d['best_loss']:.6f} (baseline {d['baseline_loss']:.6f}, "
        f"epsilon {d['min_improvement']:.6f})",
        f"budget {spec.steps} steps / segments of {spec.segment_steps}; claims so far {t.claim_count}",
        f"time: {d['time_rule']}"]
        + _round_lines(d["sealed"]))


def _round_lines(s: dict | None) -> list[str]:
    if not s:
        return ["not sealed: claims are judged on the public held-out split"]
    lines = [f"sealed: bond {format_amount(s['bond'])}; now round {s['current'] if s['current'] is not None else '-'}"]
    for r in s["rounds"]:
        when = (f"ends in {span(r['ends_at'] - s['now'])}" if r["state"] == "running" else
                f"shard {r['shard_cid']}" if r["state"] == "opened" else
                f"shard due within {span(max(0, r['open_deadline'] - s['now']))}" if r["state"] == "due" else
                "shard never opened: its claims are refunded with compensation")
        lines.append(f"  round {r['round']}: {r['state']:8} {when}")
    return lines
