"""`artrain demo`: the whole protocol on this machine, end to end (see ardemo.demo).

The demo imports torch and matplotlib (3 s): the command imports it when it runs, so
``artrain demo --help`` answers at once (tests/test_cli_start.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Where the demo writes its chain log, store, runs, chart and summary "
                                      "(emptied first if an earlier demo made it; any other non-empty "
                                      "directory is refused unless --force).")
@click.option("--force", is_flag=True, help="Empty --out even though the demo did not make it.")
@click.option("--steps", type=click.IntRange(min=2),
              help="Optimizer steps per run [default: 160; with --agents 200].")
@click.option("--segment-steps", type=click.IntRange(min=1),
              help="Steps per segment [default: 20, 8 segments; with --agents 25].")
@click.option("--agents", type=click.IntRange(1, 6), is_flag=False, flag_value=3, default=None,
              help="Instead: N research agents (default 3) and three verifiers on one task (see below).")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --agents: iterations per agent.")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON summary at the end.")
def demo(out, steps, segment_steps, force, agents, rounds, as_json):
    """Run the local end-to-end demo: devnet, task, honest trainer, cheater, three verifiers.

    Starts its own anvil (stopped at the end) and uses an embedded artifact store under
    --out; touches no other state. Ends with a summary table and a PNG chart of the
    best loss over claims. The task is the charlm template; the cheater forges the last
    segment (its end state comes from 4x the steps), which the verifiers' pick of the
    most suspicious segment finds at the default budget (other budgets change the odds).

    With --agents: N `artrain agent` processes (separate accounts) improve one charlm
    task in rounds, with the three verifiers replaying between rounds; it ends with a
    progress chart (every experiment a dot by outcome, the verified best as a step line)
    and a table. Its default --out is agents-out.

    \b
    Examples:
      artrain demo
      artrain demo --steps 400 --segment-steps 50 --out /tmp/demo --json
      artrain demo --agents            # 3 agents x 3 rounds, 3 verifiers
      artrain demo --agents 2 --rounds 2 --out /tmp/agents
    """
    from ardemo.agents import AgentsConfig, AgentsDemo, format_table  # lazy: torch, not for --help
    from ardemo.demo import Demo, DemoConfig, format_summary  # lazy: torch, matplotlib, not for --help

    config = AgentsConfig if agents else DemoConfig  # each its own budget unless given
    steps, segment_steps = steps or config.steps, segment_steps or config.segment_steps
    if steps % segment_steps:
        raise click.BadParameter(f"{segment_steps} does not divide {steps}", param_hint="--segment-steps")

    say = (lambda _msg: None) if as_json else (lambda msg: click.echo(msg))
    if agents:
        if out == Path("demo-out"):
            out = Path("agents-out")
        res = AgentsDemo(AgentsConfig(out=out, agents=agents, rounds=rounds, steps=steps, segment_steps=segment_steps,
                                      force=force), say).run()
        if as_json:
            click.echo(json.dumps(res.__dict__, sort_keys=True, default=str))
        else:
            for line in format_table(res):
                click.echo(line)
        return
    result = Demo(DemoConfig(out=out, steps=steps, segment_steps=segment_steps, force=force), say).run()
    if as_json:
        click.echo(json.dumps(result.__dict__, sort_keys=True, default=str))
    else:
        for line in format_summary(result):
            click.echo(line)
