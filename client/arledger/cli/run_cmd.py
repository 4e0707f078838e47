"""`artrain run` and `artrain replay`: thin click layers over arledger.protocol.

arledger.protocol imports torch (1 s): each command imports it when it runs, so their
``--help`` answers at once (tests/test_cli_start.py).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from arledger.cli.common import say_isolation
from arledger.execution import isolation, kernels
from arledger.micro import from_micro, to_micro
from arledger.runner.budget import fmt_flops

NO_SANDBOX_HELP = ("Run train.py in this process, as you, with your files, environment and network: only for "
                   "code you wrote. By default it runs in the sandbox (no network, none of your files).")


@click.command("run")
@click.argument("experiment_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--steps", type=click.IntRange(min=1), help="Optimizer steps (default: experiment.json defaults.steps).")
@click.option("--segment-steps", type=click.IntRange(min=1), help="Steps per segment; must divide --steps.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads (recorded; replays use the same).")
@click.option("--store", "store_spec", help="Artifact store spec (default: arstore's default store).")
@click.option("--harness", "harness_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Task harness dir (default: the 'harness' experiment.json names).")
@click.option("--task", "--task-id", "task_id", type=click.IntRange(min=0),
              help="Task id recorded in the manifest (the --task that `submit` takes; --task-id still works).")
@click.option("--parent", type=click.IntRange(min=0), help="Parent claim id this run improves on.")
@click.option("--trainer", help="Trainer address (0x...) bound into the manifest.")
@click.option("--hypothesis", default="", help="What this run tests (lab notebook).")
@click.option("--notes", default="", help="Free-form notes (lab notebook).")
@click.option("--cpu-kernels", type=click.Choice(["default", "avx2", "avx512"]), default="avx2",
              show_default=True, help="The CPU kernel set the task pins (its environment.cpu_kernels); "
              "the run re-executes itself under it.")
@click.option("--force", is_flag=True, help="Use an --out directory that is not empty and was not made by a run.")
@click.option("--no-sandbox", is_flag=True, help=NO_SANDBOX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of a progress bar.")
def run(experiment_dir, steps, segment_steps, seed, out, threads, store_spec, harness_dir, task_id, parent,
        trainer, hypothesis, notes, cpu_kernels, force, no_sandbox, as_json):
    """Train EXPERIMENT_DIR in deterministic segments, checkpoint and pin every boundary, evaluate
    the final weights with the task harness, write the manifest.

    train.py is handed the harness's training splits only; the metric is the harness's.
    Re-running the same command after a crash resumes from the last checkpoint.
    train.py runs in the sandbox (no network, none of your files or environment), the
    way verifiers replay it: code from `artrain best --download` cannot reach your key.
    The run counts its work (parameters, code size, build() and per-step FLOPs) into the
    manifest, and the kernel's CPU time of each request into its timings; `artrain submit`
    refuses a run over the task's budget (its time relative to the task's baseline timed on
    this machine) before any gas.

    \b
    Examples:
      artrain run client/arledger/templates/digits --steps 300 --segment-steps 50 --seed 1 --out runs/d
      artrain run client/arledger/templates/charlm --seed 7 --out runs/c --threads 2 --json
      artrain run my-own-experiment --out runs/mine --no-sandbox
    """
    from arledger.protocol import run as loop  # lazy: torch, not for --help

    opts = loop.RunOptions(experiment_dir=experiment_dir, out=out, steps=steps, segment_steps=segment_steps,
                           seed=seed, threads=threads, store_spec=store_spec, harness_dir=harness_dir,
                           task_id=task_id, parent=parent,
                           trainer=trainer, hypothesis=hypothesis, notes=notes,
                           cpu_kernels=cpu_kernels, force=force, sandbox=not no_sandbox)
    kernels.ensure(opts.cpu_kernels, reexec=True)  # before any tensor work: the bits depend on it
    say_isolation(loop.isolation_of(opts))
    started: list[str] = []
    if as_json:
        result = loop.run_experiment(opts, say=started.append)
    else:
        with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("seg {task.fields[segment]}  loss {task.fields[loss]}"), TimeElapsedColumn(),
                      transient=False) as bar:
            tasks: list = []  # the bar appears with the first step: a refusal before training prints only its error

            def on_progress(step: int, loss: float, segment: int, total: int) -> None:
                if not tasks:
                    tasks.append(bar.add_task("train", total=total, segment="-", loss="-"))
                bar.update(tasks[0], completed=step, total=total, segment=segment, loss=f"{loss:.4f}")

            result = loop.run_experiment(opts, on_progress=on_progress, say=bar.console.print)
    m = result.manifest
    summary = {
        "manifest": str(result.manifest_path), "manifest_cid": result.manifest_cid,
        "merkle_root": m.merkle_root, "segments": m.segments, "steps": m.steps, "seed": m.seed,
        "metric": m.evaluation.metric, "value": m.evaluation.value, "value_micro": m.evaluation.value_micro,
        "metrics": {k: from_micro(v) for k, v in m.evaluation.metrics_micro.items()},
        "metrics_micro": dict(m.evaluation.metrics_micro),
        "final_weights_cid": m.final_weights_cid, "code_cid": m.code_cid,
        "resumed_from": result.resumed_from, "timings_ms": m.timings, "work": m.work,
        "cpu_kernels": opts.cpu_kernels, "started": started[0] if started else None,
    }
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(f"{m.evaluation.metric} = {m.evaluation.value:.6f} on the public held-out split: your own estimate "
                   f"(a sealed task judges on its private shards)  ({m.segments} segments, root {m.merkle_root[:18]}...)")
        click.echo(f"manifest {result.manifest_path}  cid {result.manifest_cid} (the run's; a claim of it gets its "
                   "own, with the task, parent and trainer filled in: `artrain submit` prints it)")
        w = m.work
        click.echo(f"work: {w.get('params')} params, {w.get('code_bytes')} code bytes, build() "
                   f"{fmt_flops(w.get('startup_flops'))} FLOPs, largest counted step {fmt_flops(w.get('step_flops_max'))} "
                   f"FLOPs ({w.get('counted_steps')} steps counted)")
        t = m.timings
        if t.get("segment_cpu_ms_median"):
            click.echo(f"time: a typical segment used {t['segment_cpu_ms_median'] / 1000:.2f} s of CPU (the slowest "
                       f"{t['segment_cpu_ms_max'] / 1000:.2f} s), build() {t['build_cpu_ms'] / 1000:.2f} s, as the "
                       "kernel counts them; `artrain submit` holds them to the task's baseline timed on this machine")


@click.command("replay")
@click.argument("ref")
@click.option("--segment", "segments", type=click.IntRange(min=0), multiple=True, help="Segment index (repeatable).")
@click.option("--all", "all_segments", is_flag=True, help="Replay every segment.")
@click.option("--evaluate", "do_eval", is_flag=True,
              help="Also evaluate the final weights with the task harness, causality check included.")
@click.option("--threads", type=click.IntRange(min=1), help="Override the manifest's thread count (calibration).")
@click.option("--tolerance", "threshold", type=float, help="Tolerance mode with this normalized-distance threshold.")
@click.option("--store", "store_spec", help="Artifact store spec (default: arstore's default store).")
@click.option("--no-sandbox", is_flag=True, help=NO_SANDBOX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON results.")
def replay(ref, segments, all_segments, do_eval, threads, threshold, store_spec, no_sandbox, as_json):
    """Replay segments of a run (REF: run dir, manifest file or manifest CID) in the sandbox,
    a fresh process per segment forked from a warm one.

    Exit status 1 if any replayed segment is not a match (or within tolerance), or if the
    re-evaluated metric differs from the claimed one (compared in micro-units); a model the
    harness rejects (bad outputs, or outputs that read later inputs) is a one-line error.

    \b
    Examples:
      artrain replay runs/d --segment 2
      artrain replay runs/d --all --json
      artrain replay bafkrei... --segment 0 --threads 2 --tolerance 0.01
    """
    # the module, not arledger.protocol.replay(), the function arledger.protocol exports under its name
    rp = importlib.import_module("arledger.protocol.replay")
    manifest, run_dir = rp.load_manifest_ref(ref, store_spec=store_spec)
    # replay workers inherit this process's kernel switches: the ones the run recorded
    kernels.ensure(kernels.pin_of(dict(manifest.environment.get("kernels") or {})), reexec=True)
    idx = list(range(manifest.segments)) if all_segments else list(segments)
    if not idx and not do_eval:
        raise click.UsageError("give --segment i, --all or --evaluate")
    if any(i >= manifest.segments for i in idx):
        raise click.UsageError(f"--segment: the run has segments 0..{manifest.segments - 1}")
    mode = "tolerance" if threshold is not None else "exact"
    iso = isolation.Isolation.of(sandboxed=not no_sandbox)
    say_isolation(iso)
    job = rp.replay(manifest, rp.ReplayOptions(run_dir=run_dir, store_spec=store_spec, threads=threads, mode=mode,
                                               threshold=threshold, executor=isolation.executor(iso)))
    results = []
    for i in idx:
        r = rp.replay_segment(job, i)
        results.append(r)
        if not as_json:
            dist = f"  distance {r.distance:.3e}" if r.distance is not None else ""
            env = f"  env differs: {','.join(r.environment_differences)}" if r.environment_differences else ""
            click.echo(f"segment {i}: {r.status}{dist}{env}  ({r.wall_s:.2f}s)")
    evaluation = None
    if do_eval:
        ev = rp.evaluate_final(job, check_seed=os.urandom(16))  # the causality check a verifier will run
        if not ev.ok:
            raise click.ClickException(f"final evaluation: {ev.problem}")
        metrics = ev.metrics
        measured = metrics[manifest.evaluation.metric]
        same = to_micro(measured) == manifest.evaluation.value_micro
        evaluation = {"metric": manifest.evaluation.metric, "claimed": manifest.evaluation.value,
                      "claimed_micro": manifest.evaluation.value_micro, "measured": measured,
                      "measured_micro": to_micro(measured), "matches": same, "metrics": metrics,
                      "causality": ev.causality}
        if not as_json:
            click.echo(f"final {manifest.evaluation.metric}: claimed {manifest.evaluation.value:.6f}, "
                       f"measured {measured:.6f} ({'match' if same else 'differs'})")
    ok = all(r.ok for r in results) and (evaluation is None or evaluation["matches"])
    if as_json:
        click.echo(json.dumps({"ok": ok, "segments": [r.to_dict() for r in results], "evaluation": evaluation},
                              sort_keys=True))
    if not ok:
        raise click.exceptions.Exit(1)
