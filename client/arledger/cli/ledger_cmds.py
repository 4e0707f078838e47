"""Trainer commands that talk to the ledger: task, submit, best, status, claims, report, withdraw."""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from arledger import manifest as mf, noise, queries, sealed, tasks, taskspec
from arledger.chain.deployment import arledger_home
from arledger.chain.source import PROJECT_ROOT, verify_source, VerifyRequest
from arledger.chain.units import format_amount, loss_fields
from arledger.cli.common import (
    amount,
    chain_options,
    context_from,
    emit,
    json_option,
    open_store,
    say_isolation,
    store_option,
)
from arledger.errors import SourceMismatch
from arledger.execution import kernels
from arledger.submit import abandon_submission, report_run, submit_run

# -- task ------------------------------------------------------------------------------------


@click.group("task")
def task() -> None:
    """Create and inspect tasks (the sponsor's side)."""


@task.command("create")
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
    elif min_improvement is None and req.min_improvement == taskspec.SpecRequest.min_improvement:
        click.echo(f"warning: epsilon {req.min_improvement} (the default) was not measured against the spread of "
                   "honest seeds: the luckiest of many seeds may move the best (`artrain task noise`, "
                   "or --measure-noise 5)", err=True)
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


def _seal_summary(ledger, task_id: int) -> dict | None:
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
    return [f"sealed: {s['rounds']} round(s) of {_span(s['round_length'])}, each shard to open within "
            f"{_span(s['open_grace'])} after its round (`artrain task reveal {{task}} --watch`)",
            f"your shards: {s['secret_dir']} (back it up; it never leaves this machine before its round)"]


@task.command("heldout")
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
    data = sealed.sample_private(tasks.experiment_dir_of(experiment), rounds, out)
    emit(data, as_json, lambda d: [f"wrote {d['bytes']} bytes of private held-out data ({rounds} round(s)) to "
                                    f"{d['out']}; keep it private"])


@task.command("noise")
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


@task.command("reveal")
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
    ctx = context_from(chain)
    store = open_store(store_spec)
    while True:
        opened = sealed.open_due(ctx.ledger, store, task_id, round_)
        for d in opened:
            emit(d, as_json, lambda d: [f"round {d['round']}: shard {d['shard_cid']} " + (
                "was already open" if d["already_open"] else f"opened (tx {d['tx']}, gas {d['gas']})")])
        if not watch or sealed.all_settled(ctx.ledger, task_id):
            if not opened and not watch:
                emit({"task_id": task_id, "opened": []}, as_json, lambda d: ["no round is due (see `artrain task show`)"])
            return
        time.sleep(poll)


@task.command("show")
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
        when = (f"ends in {_span(r['ends_at'] - s['now'])}" if r["state"] == "running" else
                f"shard {r['shard_cid']}" if r["state"] == "opened" else
                f"shard due within {_span(max(0, r['open_deadline'] - s['now']))}" if r["state"] == "due" else
                "shard never opened: its claims are refunded with compensation")
        lines.append(f"  round {r['round']}: {r['state']:8} {when}")
    return lines


# -- submit ----------------------------------------------------------------------------------


@click.command("submit")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True, help="Task id.")
@click.option("--parent", "parent_id", type=click.IntRange(min=0), help="Claim this improves on [default: current best].")
@click.option("--stake", callback=amount, help="Stake [default: the task's minimum].")
@click.option("--abandon", is_flag=True, help="Forget this run dir's unrevealed submission (to start over).")
@click.option("--wait", is_flag=True, help="Sealed task: stay until the round's shard is open, then reveal the loss.")
@store_option
@chain_options
@json_option
def submit(run_dir, task_id, parent_id, stake, abandon, wait, store_spec, as_json, **chain):
    """Pin a finished run's artifacts, commit, wait a block, reveal. Safe to re-run after a crash.

    Refuses, before any gas is spent, a run that does not meet the task (steps, segment
    length, data, environment, budget), a parent that is not a claim of the task, and a
    stake below the task's minimum or above the balance; warns when the loss cannot
    beat the best by the task's epsilon, or another claim on the same parent is pending.
    A reveal that fails leaves the saved commit: fix the cause and run the same command
    again, or pass --abandon to start over.

    On a sealed task the reveal fixes the claim in the current round without a loss; run
    the same command again once the round's shard is open (or pass --wait) and it scores
    the run's weights and the best claim's on that shard, sandboxed, and reveals both.

    \b
    Examples:
      artrain submit runs/a --task 1 --dev-account 1
      artrain submit runs/a --task 1 --stake 0.2eth --json
      artrain submit runs/a --task 1 --abandon          # forget an unrevealed submission
      artrain submit runs/a --task 2 --wait             # sealed: reveal, wait for the shard, score
    """
    ctx = context_from(chain)
    if abandon:
        data = abandon_submission(ctx.ledger, run_dir, task_id)
        emit(data, as_json, lambda d: [f"abandoned the submission saved in {run_dir}" + (
            f"; its commitment {d['commitment']} stays on chain unrevealed (nothing was staked)"
            if d["committed"] else "")])
        return
    warn = lambda msg: click.echo(f"warning: {msg}", err=True)  # noqa: E731
    with _pin_progress(run_dir, quiet=as_json) as progress:
        s = submit_run(ctx.ledger, open_store(store_spec), run_dir, task_id, parent_id=parent_id, stake=stake,
                       progress=progress, warn=warn, wait=wait)
    d = s.to_dict()
    d.update(loss_fields("claimed_loss", s.claimed_loss))
    emit(d, as_json, lambda d: [
        f"claim {d['claim_id']} revealed on task {d['task_id']} ("
        + (f"loss {d['claimed_loss']:.6f}, " if not d["sealed"] else f"sealed round {d['sealed']['round']}, ")
        + f"stake {format_amount(d['stake'])}){' [resumed]' if d['resumed'] else ''}",
        f"manifest {d['manifest_cid']}",
        f"commit {d['commit_tx']}  reveal {d['reveal_tx']}  gas " +
        ", ".join(f"{k} {v}" for k, v in sorted(d["gas"].items()))] + _submitted_seal(d["sealed"], task_id, run_dir))


def _submitted_seal(s: dict | None, task_id: int, run_dir: Path) -> list[str]:
    if not s:
        return []
    own = f"your estimate on the public split: {s['dev_loss']:.6f}"
    if s["stage"] == "scored":
        inc = f"claim {s['incumbent_id']}" if s["incumbent_id"] else "the baseline"
        return [f"scored on round {s['round']}'s shard: {s['claimed_loss']:.6f} against {inc}'s "
                f"{s['incumbent_loss']:.6f} ({own})"]
    if s["stage"] == "waiting":
        return [f"waiting for round {s['round']}'s shard (the round ends at chain time {s['round_ends_at']}); "
                f"then run `artrain submit {run_dir} --task {task_id}` again, or pass --wait ({own})"]
    return [f"round {s['round']}: the claim can no longer be scored ({s.get('state')})"]


@contextmanager
def _pin_progress(run_dir: Path, quiet: bool):
    """A progress bar over what submit pins (code, each checkpoint, weights, manifest), then
    the commit and reveal: shown from the first of them (a refusal before any work prints
    only its error); silent for --json."""
    if quiet:
        yield lambda msg: None
        return


    try:  # code, each checkpoint, weights, manifest, commit, reveal
        total = len(mf.load(run_dir / "manifest.json").boundaries) + 5
    except Exception:  # submit_run reports a bad manifest itself
        total = None
    bar = Progress(TextColumn("[bold]submit"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[what]}"),
                   console=Console(stderr=True))
    task = None

    def step(msg: str) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("submit", total=total, what="")
        bar.update(task, advance=1, what=msg[:60])

    try:
        yield step
        if task is not None:  # a resumed submission skips steps: the bar still ends full
            bar.update(task, completed=total, what="done")
    finally:
        if task is not None:
            bar.stop()


# -- queries ---------------------------------------------------------------------------------


@click.command("best")
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True)
@click.option("--download", type=click.Path(file_okay=False, path_type=Path),
              help="Fetch and verify the best model's code and weights into this dir (new, empty, or "
                   "made by an earlier download).")
@click.option("--force", is_flag=True, help="Download into a non-empty dir an earlier download did not make.")
@store_option
@chain_options
@json_option
def best(task_id, download, force, store_spec, as_json, **chain):
    """The task's on-chain best claim: loss, trainer, code, manifest and weights CIDs.

    \b
    Examples:
      artrain best --task 1
      artrain best --task 1 --download best/ --json
    """
    ctx = context_from(chain, need_account=False)
    store = open_store(store_spec)
    info = (queries.download_best(ctx.ledger, store, task_id, download, force=force) if download
            else queries.best_model(ctx.ledger, store, task_id))
    emit(info, as_json, lambda d: [
        f"task {task_id} best: claim {d['claim_id'] or '- (baseline)'}  {d['metric']} = {d['loss']:.6f} "
        f"{d['units']} (baseline {d['baseline_loss']:.6f})",
        f"trainer {d['trainer'] or '-'}", f"code     {d['code_cid']}", f"manifest {d['manifest_cid'] or '-'}",
        f"weights  {d['weights_cid'] or '-'}"] + ([
            f"downloaded to {download} (load it: see \"The best model\" in README.md)"] if download else []))


@click.command("status")
@click.argument("claim_id", type=click.IntRange(min=1))
@chain_options
@json_option
def status(claim_id, as_json, **chain):
    """One claim: state, confirmations, deadline, open dispute.

    \b
    Examples:
      artrain status 1
      artrain status 1 --json | jq .state
    """
    ctx = context_from(chain, need_account=False)
    info = queries.claim_status(ctx.ledger, claim_id)
    emit(info, as_json, lambda d: [
        f"claim {claim_id} (task {d['task_id']}): {d['state']}  confirmations {d['confirmations']}/{d['quorum']}",
        f"loss {d['claimed_loss']:.6f}  trainer {d['trainer']}  stake {format_amount(d['stake'])}",
        f"{_deadline(d['challenge_deadline'], d['now'])}  manifest {d['manifest_cid']}"]
        + _sealed_status(d.get("sealed"), d["now"])
        + ([f"warning: {d['expiry_warning']}"] if d.get("expiry_warning") else [])
        + ([f"dispute {d['dispute']['kind']} segment {d['dispute']['segment']}: {d['dispute']['state']} "
            f"(uphold {d['dispute']['votes_uphold']} / dismiss {d['dispute']['votes_dismiss']})"]
           if d.get("dispute") else []))


def _sealed_status(s: dict | None, now: int) -> list[str]:
    if not s:
        return []
    if s["scored"]:
        return [f"sealed round {s['round']}: scored on shard {s['shard_cid']} against "
                f"{'claim ' + str(s['incumbent_id']) if s['incumbent_id'] else 'the baseline'} "
                f"(incumbent loss {s['incumbent_loss']:.6f})"]
    if s["round_state"] == "running":
        return [f"sealed round {s['round']}: ends in {_span(s['round_ends_at'] - now)}; the loss comes once its "
                "shard is open (`artrain submit RUN --task N --wait`)"]
    if s["round_state"] == "opened":
        return [f"sealed round {s['round']}: shard {s['shard_cid']} is open; reveal the loss with "
                "`artrain submit RUN --task N`"]
    return [f"sealed round {s['round']}: {s['round_state']} (opening deadline "
            f"{'passed' if now > s['open_deadline'] else 'in ' + _span(s['open_deadline'] - now)})"]


def _deadline(deadline: int, now: int) -> str:
    """Chain time, said the way a person reads it: still to come, or how long ago it passed."""
    left = deadline - now
    if left >= 0:
        return f"challenge deadline in {_span(left)} (chain time)"
    return f"challenge deadline passed {_span(-left)} ago (chain time)"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


@click.command("claims")
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True)
@chain_options
@json_option
def claims(task_id, as_json, **chain):
    """A task's history: every claim (with its outcome) and every experiment report.

    \b
    Examples:
      artrain claims --task 1
      artrain claims --task 1 --json | jq '.[] | select(.kind == "report") | .note'
    """
    ctx = context_from(chain, need_account=False)
    ctx.ledger.task(task_id)  # an unknown task is an error (LedgerUnknownTask), not an empty table
    rows = queries.history(ctx.ledger, task_id)

    def human(rows):
        yield f"{'kind':7} {'id':>4} {'state':11} {'loss':>10}  {'trainer':42} note"
        for r in rows:
            if r["kind"] == "claim":
                note = ("improved" if r["improved"] else "") + (f" challenged x{r['challenges']}" if r["challenges"] else "")
                yield f"claim   {r['claim_id']:>4} {r['state']:11} {r['claimed_loss']:>10.6f}  {r['trainer']:42} {note}"
            else:
                yield f"report  {'-':>4} {'-':11} {r['loss']:>10.6f}  {r['reporter']:42} {r['note'][:60]}"
    emit(rows, as_json, human)


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", "task_id", type=click.IntRange(min=1), required=True)
@click.option("--note", default="", help="What was tried and what happened (at most 2048 bytes; "
              "default: the run's notes or hypothesis).")
@store_option
@chain_options
@json_option
def report(run_dir, task_id, note, store_spec, as_json, **chain):
    """Publish an unstaked experiment report (failed or non-improving runs belong in the record too).

    \b
    Example:
      artrain report runs/failed --task 1 --note "lr 3e-2 diverged after 150 steps"
    """
    ctx = context_from(chain)
    rep = report_run(ctx.ledger, open_store(store_spec), run_dir, task_id, note)
    emit({"task_id": task_id, "manifest_cid": rep["manifest_cid"], **loss_fields("loss", rep["loss_micro"]),
          "tx": rep["tx"], "gas": rep["gas"]}, as_json,
         lambda d: [f"report published on task {task_id}: loss {d['loss']:.6f} manifest {d['manifest_cid']} "
                     f"(tx {d['tx']}, gas {d['gas']})"])


@click.command("withdraw")
@chain_options
@json_option
def withdraw(as_json, **chain):
    """Pay out everything the ledger owes this account (rewards, returned stakes, fees).

    \b
    Examples:
      artrain withdraw --dev-account 1
      artrain withdraw --keystore trainer.json --json
    """
    withdraw_owed(as_json, chain)


def withdraw_owed(as_json: bool, chain: dict) -> None:
    """``withdraw`` of artrain and arverify: one body (the ledger owes an account one balance)."""
    ctx = context_from(chain)
    owed = ctx.ledger.balance_of(ctx.address)
    if owed == 0:
        emit({"account": ctx.address, "withdrawn": 0}, as_json,
             lambda d: [f"nothing to withdraw for {ctx.address}"])
        return
    tx = ctx.ledger.withdraw()
    emit({"account": ctx.address, "withdrawn": owed, "tx": tx.tx_hash, "gas": tx.gas_used}, as_json,
         lambda d: [f"withdrew {format_amount(owed)} to {ctx.address} (tx {tx.tx_hash})"])


# -- ledger ----------------------------------------------------------------------------------


@click.group("ledger")
def ledger() -> None:
    """The ledger contract itself: is the code at an address this source?"""


@ledger.command("verify")
@click.argument("address", required=False)
@click.option("--sources", "source_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Checkout holding contracts/ and node_modules/ [default: this installation's].")
@click.option("--solc", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A solc of the build's version [default: scripts/solcjs-cli, the solc-js in node_modules].")
@chain_options
@json_option
def ledger_verify(address, source_root, solc, as_json, **chain):
    """Check that the ledger at ADDRESS runs this source: recompile it with the settings the
    build recorded (py-solc-x, through solc-js: nothing is downloaded) and compare with the
    code on chain. "full" means byte for byte, metadata included (the exact sources);
    "partial" means the same code built from sources differing only in comments or whitespace;
    anything else exits 1. ADDRESS defaults to the configured ledger; works on any EVM
    JSON-RPC endpoint.

    \b
    Examples:
      artrain ledger verify                            # the devnet's (or $ARLEDGER_LEDGER's) ledger
      artrain ledger verify 0x5FbDB2315678afecb367f032d93F642f64180aa3 --rpc-url https://rpc.example
      artrain ledger verify --json | jq .match
    """
    if address:
        chain["ledger_address"] = address
    ctx = context_from(chain, need_account=False)
    verdict = verify_source(VerifyRequest(ctx.ledger.w3, ctx.ledger.address, source_root or PROJECT_ROOT, solc))
    if not verdict.ok and not as_json:
        raise SourceMismatch(f"{verdict.address} on chain {verdict.chain_id}: {verdict.reason}")
    emit(verdict.to_dict(), as_json, lambda d: [
        f"{d['address']} on chain {d['chain_id']}: {d['match']} match with {d['contract']} "
        f"(solc {d['compiler']}, {d['code_bytes']} bytes, compiled in {d['compile_seconds']:.1f}s)",
        f"  {d['reason']}",
        *([f"  note: differs from the build record: {', '.join(d['changed_since_build'])}"]
          if d["changed_since_build"] else [])])
    if not verdict.ok:
        raise SystemExit(1)
