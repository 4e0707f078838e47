"""The sponsor's `artrain task` commands that build, measure and open: `create` (the data set,
the baseline, the spec, the task on chain), `heldout`, `noise` and `reveal`. Registered on the
`task` group (``arledger.cli.task_cmds``), which loads this module only to run one of them.

The library modules they run import torch (2 s): each command imports what it runs, so
their ``--help`` answers at once (tests/test_cli_start.py)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from arledger import seal_rounds
from arledger.chain.deployment import arledger_home
from arledger.chain.units import loss_fields
from arledger.cli.common import (
    amount,
    chain_options,
    context_from,
    emit,
    json_option,
    open_store,
    say_isolation,
    span,
    store_option,
)
from arledger.execution import kernels

if TYPE_CHECKING:
    from arledger import noise, tasks


@click.command("create")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Task request JSON (example: examples/task-charlm.json); flags below override it.")
@click.option("--template", help="Template name or experiment dir, when no --spec is given (charlm, digits).")
@click.option("--reward", callback=amount, help="Reward per accepted improvement, e.g. 1eth.")
@click.option("--pool", callback=amount, help="Initial reward pool sent with the transaction.")
@click.option("--steps", type=click.IntRange(min=1), help="Budget in optimizer steps.")
@click.option("--segment-steps", type=click.IntRange(min=1), help="Segment length in steps.")
@click.option("--quorum", type=click.IntRange(1, 16), help="Confirmations needed.")
@click.option("--challenge-window", type=click.IntRange(min=1), help="Seconds after reveal for confirm/challenge.")
@click.option("--voting-window", type=click.IntRange(min=1), help="Seconds a dispute is open for votes.")
@click.option("--heldout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your private held-out data: makes the task sealed, judged round by round on shards of it "
                   "(kept in $ARLEDGER_HOME/sealed, never pinned before its round; see `artrain task heldout`).")
@click.option("--rounds", type=click.IntRange(1, 65535), help="Sealed rounds, one shard each [default: 3].")
@click.option("--round-length", type=click.IntRange(min=1), help="Seconds per sealed round [default: 86400].")
@click.option("--open-grace", type=click.IntRange(min=1),
              help="Seconds after a round within which you must open its shard [default: 3600].")
@click.option("--sponsor-bond", callback=amount,
              help="Held against missed openings, apart from the pool [default: 1eth].")
@click.option("--min-improvement", type=click.FloatRange(min=0, min_open=True),
              help="Epsilon, in the metric's units: what a claim must beat the best by (`artrain task noise` "
                   "proposes one from measured seed spread) [default: 0.001].")
@click.option("--measure-noise", type=click.IntRange(min=2), metavar="SEEDS",
              help="Train the baseline code with this many seeds first and take epsilon = 3 sigma of their "
                   "spread (on the shards of --heldout when given) as --min-improvement.")
@store_option
@chain_options
@json_option
def task_create(spec_file, template, reward, pool, steps, segment_steps, quorum, challenge_window,
                voting_window, heldout, rounds, round_length, open_grace, sponsor_bond, min_improvement, measure_noise,
                store_spec, as_json, **chain):
    """Build and pin the data set and TaskSpec, then create the task on chain; prints its id.

    With --heldout the task is sealed (docs/sealed-evaluation.md): your private data is cut
    into one shard per round and committed on chain by a Merkle root; claims are judged on
    their round's shard once you open it (`artrain task reveal`). Back up the directory it
    prints: without it you cannot open the shards, and your bond pays the trainers.

    \b
    Examples:
      artrain task create --template charlm --reward 1eth --pool 3eth --dev-account 0
      artrain task create --spec task.json --json
      artrain task heldout charlm --rounds 3 --out private.txt
      artrain task create --template charlm --heldout private.txt --rounds 3 --round-length 3600
    """
    from arledger import taskbuild, tasks  # lazy: torch, not for --help

    if spec_file:
        req = tasks.load_request(spec_file)
    elif template:
        req = tasks.TaskRequest(experiment_dir=tasks.experiment_dir_of(template))
    else:
        raise click.UsageError("give --spec FILE or --template NAME")
    req = tasks.with_overrides(req, time_home=arledger_home(),
                               reward=reward, pool=pool, quorum=quorum, challenge_window=challenge_window,
                               voting_window=voting_window, steps=steps, segment_steps=segment_steps,
                               heldout=heldout, rounds=rounds, round_length=round_length, open_grace=open_grace,
                               sponsor_bond=sponsor_bond, min_improvement=min_improvement)

    kernels.ensure(req.cpu_kernels or kernels.DEFAULT_PIN, reexec=True)  # the baseline is measured under it
    say_isolation()  # the baseline's train.py runs sandboxed
    ctx = context_from(chain)
    for line in tasks.check_funds(ctx.ledger, req):  # before the noise runs and the baseline
        click.echo(line, err=True)
    store = open_store(store_spec)
    measured = None
    if measure_noise:
        measured = _measure_noise(req, measure_noise, store, as_json)
        req = tasks.with_overrides(req, min_improvement=measured.epsilon)
    elif min_improvement is None and req.min_improvement == taskbuild.SpecRequest.min_improvement:
        click.echo(f"warning: epsilon {req.min_improvement} (the default) was not measured against the spread of "
                   "honest seeds: the luckiest of many seeds may move the best, and a forged segment that gains "
                   "less than a third of that spread can hide from the default sampling (docs/verification.md); "
                   "`artrain task noise`, or --measure-noise 5", err=True)
    task_id, spec, spec_cid, tx = tasks.create_task(ctx.ledger, store, req)
    data = {"task_id": task_id, "spec_cid": spec_cid, "tx": tx.tx_hash, "gas": tx.gas_used,
            **loss_fields("baseline_loss", spec.baseline_loss_micro), "metric": spec.evaluation["metric"],
            "steps": spec.steps, "segment_steps": spec.segment_steps, "datasets": spec.datasets,
            "baseline_code_cid": spec.baseline_code_cid, "budget": dict(spec.budget),
            "cpu_kernels": spec.cpu_kernels, "sealed": _seal_summary(ctx.ledger, task_id),
            "time_rule": spec.work_budget.rule(),
            **loss_fields("min_improvement", spec.min_improvement_micro),
            "noise": measured.to_dict() if measured else None}
    emit(data, as_json, lambda d: [f"task {d['task_id']} created (tx {d['tx']}, gas {d['gas']})",
                                    f"spec {d['spec_cid']}  baseline {d['metric']} = {d['baseline_loss']:.4f}",
                                    f"budget {d['steps']} steps in segments of {d['segment_steps']}; at most "
                                    f"{d['budget'].get('flops_per_step', '-')} FLOPs per counted step; "
                                    f"kernels {d['cpu_kernels']}",
                                    f"time: {d['time_rule']}"] + _seal_lines(d["sealed"]))


def _measure_noise(req: tasks.TaskRequest, seeds: int, store, as_json: bool) -> noise.Noise:
    """--measure-noise: the baseline code's seed spread (and shard spread), before the task exists."""
    from arledger import noise  # lazy: torch, not for --help

    with tempfile.TemporaryDirectory(prefix="arledger-noise-") as tmp:
        shards = (noise.shard_files(req.experiment_dir, req.heldout, req.terms.rounds, Path(tmp) / "shards")
                  if req.heldout else ())
        say = (lambda m: None) if as_json else (lambda m: click.echo(f"noise: {m}", err=True))
        n = noise.measure(noise.NoiseRequest(req.experiment_dir, Path(tmp) / "runs", tuple(range(1, seeds + 1)),
                                             req.steps, req.segment_steps, shards, req.cpu_kernels or kernels.DEFAULT_PIN),
                          store, say)
    if not as_json:
        click.echo(f"noise: sigma over {seeds} seeds {max(n.seed_sigma, n.public_sigma):.6f}; epsilon "
                   f"{n.epsilon:.6f} (3 sigma)", err=True)
    return n


@click.command("heldout")
@click.argument("experiment")
@click.option("--rounds", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the private data (a new file).")
@json_option
def task_heldout(experiment, rounds, out, as_json):
    """Private held-out data for a sealed task, drawn by the task's harness from a fresh secret.

    For a sponsor who has no private data of its own: the template harnesses draw new
    examples with the task's statistics (docs/sealed-evaluation.md says how), which no
    public file contains. Pass the file to `artrain task create --heldout`.

    \b
    Examples:
      artrain task heldout charlm --rounds 3 --out private.txt
      artrain task create --template charlm --heldout private.txt --rounds 3
    """
    from arledger import sealed, tasks  # lazy: torch, not for --help

    data = sealed.sample_private(tasks.experiment_dir_of(experiment), rounds, out)
    emit(data, as_json, lambda d: [f"wrote {d['bytes']} bytes of private held-out data ({rounds} round(s)) to "
                                    f"{d['out']}; keep it private"])


@click.command("noise")
@click.argument("experiment")
@click.option("--seeds", default="1-5", show_default=True, help="Seeds to train: 1-5 or 1,4,9.")
@click.option("--heldout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Private held-out data, cut as a sealed task would (the spread over shards too).")
@click.option("--rounds", type=click.IntRange(1, 1000), default=3, show_default=True, help="Shards to cut it into.")
@click.option("--steps", type=click.IntRange(min=1), help="Budget in steps [default: experiment.json's].")
@click.option("--segment-steps", type=click.IntRange(min=1), help="Segment length [default: experiment.json's].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("noise-runs"),
              show_default=True, help="Where the seeds' runs go.")
@store_option
@json_option
def task_noise(experiment, seeds, heldout, rounds, steps, segment_steps, out, store_spec, as_json):
    """The spread of honest runs over seeds (and shards), and the epsilon it calls for.

    Trains the experiment once per seed to its budget (sandboxed, as `artrain run`),
    evaluates each run on the public held-out split and on each shard of --heldout, and
    proposes epsilon = 3 sigma of the seeds' spread: pass it to `artrain task create
    --min-improvement`, or the luckiest of many seeds moves the best pointer.

    \b
    Examples:
      artrain task noise digits --seeds 1-5
      artrain task noise charlm --seeds 1-6 --heldout private.txt --rounds 3 --json
    """
    from arledger import noise, tasks  # lazy: torch, not for --help

    seed_list = _seeds(seeds)
    exp = tasks.experiment_dir_of(experiment)
    kernels.ensure(kernels.DEFAULT_PIN, reexec=True)  # every seed's bits under the pin tasks use
    say_isolation()
    say = (lambda m: None) if as_json else (lambda m: click.echo(m, err=True))
    with tempfile.TemporaryDirectory(prefix="arledger-noise-") as tmp:  # private (0700), gone after: shards are secret
        shards = noise.shard_files(exp, heldout, rounds, Path(tmp) / "shards") if heldout else ()
        n = noise.measure(noise.NoiseRequest(exp, out, tuple(seed_list), steps, segment_steps, shards),
                          open_store(store_spec), say)
    emit(n.to_dict(), as_json, lambda d: [
        f"{d['metric']} over {len(d['seeds'])} seeds: public split sigma {d['public_sigma']:.6f}"
        + (f"; on one shard sigma {d['seed_sigma']:.6f}, across shards sigma {d['shard_sigma'] or 0:.6f}"
           if d["shards"] and d["shards"][0] else ""),
        f"proposed epsilon ({d['epsilon_sigmas']} sigma): {d['epsilon']:.6f}  "
        f"(artrain task create ... --min-improvement {d['epsilon']:.6f})"])


def _seeds(text: str) -> list[int]:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            out = list(range(lo, hi + 1))
        else:
            out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give a range (1-5) or a list (1,4,9)", param_hint="--seeds") from None
    if len(out) < 2 or min(out) < 0:
        raise click.BadParameter(f"{text!r}: at least two seeds, none negative", param_hint="--seeds")
    return out


@click.command("reveal")
@click.argument("task_id", type=click.IntRange(min=1))
@click.option("--round", "round_", type=click.IntRange(min=0), help="The round to open [default: every due round].")
@click.option("--watch", is_flag=True, help="Keep running: open each round's shard as soon as its round closes.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds between checks.")
@store_option
@chain_options
@json_option
def task_reveal(task_id, round_, watch, poll, store_spec, as_json, **chain):
    """Open a sealed task's shards (the sponsor): pin each closed round's shard, prove it on chain.

    A round's claims are judged only once its shard is open; a shard not opened within the
    task's grace after its round refunds the round's trainers from your bond.

    \b
    Examples:
      artrain task reveal 1                  # every round that is due now
      artrain task reveal 1 --round 0 --json
      artrain task reveal 1 --watch          # leave it running for the task's life
    """
    from arledger import sealed  # lazy: torch, not for --help

    ctx = context_from(chain)
    store = open_store(store_spec)
    while True:
        opened = sealed.open_due(ctx.ledger, store, task_id, round_)
        for d in opened:
            emit(d, as_json, lambda d: [f"round {d['round']}: shard {d['shard_cid']} " + (
                "was already open" if d["already_open"] else f"opened (tx {d['tx']}, gas {d['gas']})")])
        if not watch or seal_rounds.all_settled(ctx.ledger, task_id):
            if not opened and not watch:
                emit({"task_id": task_id, "opened": []}, as_json, lambda d: ["no round is due (see `artrain task show`)"])
            return
        time.sleep(poll)


def _seal_summary(ledger, task_id: int) -> dict | None:
    from arledger import sealed  # lazy: torch, not for --help

    seal = ledger.seal(task_id)
    if not seal.sealed:
        return None
    return {"rounds": seal.rounds, "start": seal.start, "round_length": seal.round_length,
            "open_grace": seal.open_grace, "bond": seal.bond, "shard_root": "0x" + seal.shard_root.hex(),
            "secret_dir": str(sealed.sealed_home() / seal.shard_root.hex())}


def _seal_lines(s: dict | None) -> list[str]:
    if not s:
        return ["warning: not sealed: claims are judged on the public held-out split, which a claim can carry "
                "in its code (--heldout seals the task)"]
    return [f"sealed: {s['rounds']} round(s) of {span(s['round_length'])}, each shard to open within "
            f"{span(s['open_grace'])} after its round (`artrain task reveal {{task}} --watch`)",
            f"your shards: {s['secret_dir']} (back it up; it never leaves this machine before its round)"]
