"""`artrain demo`: the whole protocol on this machine, end to end (see ardemo.demo)."""

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
@click.option("--steps", type=click.IntRange(min=2), default=200, show_default=True)
@click.option("--segment-steps", type=click.IntRange(min=1), default=25, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON summary at the end.")
def demo(out, steps, segment_steps, force, as_json):
    """Run the local end-to-end demo: devnet, task, honest trainer, cheater, three verifiers.

    Starts its own anvil (stopped at the end) and uses an embedded artifact store under
    --out; touches no other state. Ends with a summary table and a PNG chart of the
    best loss over claims. The task is the charlm template; the cheater forges the last
    segment (its end state comes from 4x the steps), which the verifiers' pick of the
    most suspicious segment finds at the default budget (other budgets change the odds).

    \b
    Examples:
      artrain demo
      artrain demo --steps 400 --segment-steps 50 --out /tmp/demo --json
    """
    from ardemo.demo import Demo, DemoConfig, format_summary

    if steps % segment_steps:
        raise click.BadParameter(f"{segment_steps} does not divide {steps}", param_hint="--segment-steps")
    say = (lambda _msg: None) if as_json else (lambda msg: click.echo(msg))
    result = Demo(DemoConfig(out=out, steps=steps, segment_steps=segment_steps, force=force), say).run()
    if as_json:
        click.echo(json.dumps(result.__dict__, sort_keys=True, default=str))
    else:
        for line in format_summary(result):
            click.echo(line)
