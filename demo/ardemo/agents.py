"""The research collective on one machine (`artrain demo --agents`, `make agents`).

A fresh anvil with the ledger, the embedded store, a sponsor's charlm task, three
verifiers, and N agents: each a separate ``artrain agent`` process with its own dev
account, work directory and seed, all on the one task. Every round, the agents run one
iteration each in parallel (read the best and the history, propose, train, submit or
report); then the verifiers (``arverifier.node.VerifierNode``, what ``arverify watch``
runs) sample and replay, time is fast-forwarded past the windows, and claims finalize,
so the best pointer the next round builds on is a verified one. It ends with a chart
(every experiment a dot by outcome, the verified best as a step line over experiment
number) and a summary table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.pyplot as plt

from ardemo.demo import Actor, Demo, DemoConfig, ETH
from arledger import outdir, queries, tasks
from arledger.chain.signer import Signer
from arledger.devnet import LocalChain
from arledger.micro import fmt
from arstore import EmbeddedStore


@dataclass
class AgentsConfig:
    out: Path = Path("agents-out")
    agents: int = 3
    rounds: int = 3  # iterations per agent
    steps: int = 200
    segment_steps: int = 25
    min_improvement: float = 0.005
    force: bool = False


@dataclass
class AgentsResult:
    task_id: int
    experiments: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    chart: str = ""
    seconds: float = 0.0


class AgentsDemo:
    AGENT_ACCOUNTS = (1, 2, 6, 7, 8, 9)
    VERIFIERS = (("v1", 3), ("v2", 4), ("v3", 5))

    def __init__(self, cfg: AgentsConfig, say: Callable[[str], None] = print):
        self.cfg = cfg
        self.say = say
        self.out = Path(cfg.out).resolve()
        if not 1 <= cfg.agents <= len(self.AGENT_ACCOUNTS):
            raise ValueError(f"agents: 1 to {len(self.AGENT_ACCOUNTS)}")

    def run(self) -> AgentsResult:
        t0 = time.perf_counter()
        outdir.claim(self.out, "artrain demo --agents", force=self.cfg.force, empty=True)
        self.say("[1/4] devnet: starting anvil and deploying TrainingLedger")
        with LocalChain.start(log_file=self.out / "anvil.log") as chain:
            return self._story(chain, t0)

    def _story(self, chain: LocalChain, t0) -> AgentsResult:
        cfg = self.cfg
        keys, deployer = chain.keys, chain.ledger
        store = EmbeddedStore(self.out / "store")
        home = self.out / "home"  # the agents' ARLEDGER_HOME: it names this devnet and nothing else
        home.mkdir()
        (home / "deployment.json").write_bytes(chain.deployment(with_keys=True).to_json())
        self.say(f"[2/4] sponsor: creating a charlm task ({cfg.steps} steps in segments of {cfg.segment_steps})")
        req = tasks.TaskRequest(experiment_dir=tasks.experiment_dir_of("charlm"), steps=cfg.steps,
                                segment_steps=cfg.segment_steps, min_improvement=cfg.min_improvement,
                                terms=tasks.TaskTerms(quorum=2, challenge_window=600, voting_window=300),
                                time_home=home)  # the agents' and verifiers' home: the baseline timed once
        task_id, spec, _, _ = tasks.create_task(deployer, store, req)
        self.say(f"      task {task_id}: {spec.evaluation['metric']}, baseline {fmt(spec.baseline_loss_micro, 4)}, "
                 f"epsilon {cfg.min_improvement}")
        by = {}
        for name, i in self.VERIFIERS:
            a = Actor(name, "verifier", i)
            a.ledger = deployer.with_account(Signer.from_key(keys[i]))
            a.address = a.ledger.account_address
            a.ledger.register_verifier(ETH)
            by[name] = a
        self.say("      verifiers v1, v2, v3 registered with 1 ETH stake each")
        helper = Demo(DemoConfig(out=self.out), self.say)
        nodes = helper._nodes(by, store)
        agents = {f"agent{k + 1}": self.AGENT_ACCOUNTS[k] for k in range(cfg.agents)}
        names = {Signer.from_key(keys[i]).address.lower(): n for n, i in agents.items()}
        experiments: list[dict] = []
        for rnd in range(1, cfg.rounds + 1):
            self.say(f"[3/4] round {rnd}/{cfg.rounds}: {cfg.agents} agents propose, train and publish in parallel")
            for name, it in self._round(task_id, agents, home):
                it["agent"] = name
                experiments.append(it)
                self.say(f"      {name}: {it['summary']}")
            self.say("      verifiers replay; the windows pass; claims finalize")
            helper._until_quiet(nodes)
            chain.advance(301)
            helper._until_quiet(nodes)
            chain.advance(601)
            helper._until_quiet(nodes)
            best_id, best = deployer.best_claim(task_id)
            self.say(f"      best on chain: {'claim ' + str(best_id) if best_id else 'the baseline'} ({fmt(best, 4)})")
        for n in nodes:
            n.checker.close()
            n.state.close()
        self.say("[4/4] the progress chart and the table")
        return self._summary(task_id, deployer, store, experiments, names, t0)

    def _round(self, task_id: int, agents: dict[str, int], home: Path) -> list[tuple[str, dict]]:
        env = {**os.environ, "ARLEDGER_HOME": str(home)}
        artrain = shutil.which("artrain", path=str(Path(sys.executable).parent)) or shutil.which("artrain")
        if not artrain:
            raise RuntimeError("the artrain command is not installed next to this Python (make setup)")
        (self.out / "agents").mkdir(exist_ok=True)
        procs = {}
        for k, (name, account) in enumerate(agents.items()):
            cmd = [artrain, "agent", "--task", str(task_id), "--dev-account", str(account),
                   "--store", f"embedded:{self.out / 'store'}", "--workdir", str(self.out / "agents" / name),
                   "--seed", str(k), "--iterations", "1", "--json"]
            log = open(self.out / "agents" / f"{name}.log", "a")
            procs[name] = (subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True), log)
        out = []
        for name, (p, log) in procs.items():
            stdout, _ = p.communicate()
            log.close()
            if p.returncode != 0:
                raise RuntimeError(f"{name} failed (exit {p.returncode}); see {self.out / 'agents' / (name + '.log')}")
            for line in stdout.splitlines():
                rec = json.loads(line) if line.startswith("{") else {}
                if rec.get("kind") == "iteration":
                    rec["summary"] = _summary_line(rec)
                    out.append((name, rec))
        return out

    def _summary(self, task_id, ledger, store, experiments, names, t0) -> AgentsResult:
        states = {r["claim_id"]: r for r in queries.history(ledger, task_id) if r["kind"] == "claim"}
        for n, e in enumerate(experiments, start=1):
            e["number"] = n
            e["state"] = states[e["claim_id"]]["state"] if e.get("claim_id") else (
                "Report" if e["outcome"] == "report" else e["outcome"])
            e["improved"] = bool(states.get(e.get("claim_id"), {}).get("improved"))
        best = queries.best_model(ledger, store, task_id)
        best["trainer_name"] = names.get((best.get("trainer") or "").lower(), "-")
        chart = self.out / "agents-progress.png"
        fig = progress_figure(experiments, best)
        fig.savefig(chart)

        plt.close(fig)
        result = AgentsResult(task_id, experiments, best, str(chart), round(time.perf_counter() - t0, 1))
        (self.out / "summary.json").write_text(json.dumps(result.__dict__, indent=2, default=str))
        return result


def _summary_line(it: dict) -> str:
    loss = f"{it['loss']:.4f}" if it.get("loss") is not None else "-"
    what = f"claim {it['claim_id']}" if it["outcome"] == "claim" else it["outcome"]
    return f"{it.get('move') or it['proposer']:26} on {it['base_ref']:9} -> {loss}  {what}"


def progress_figure(experiments: list[dict], best: dict):
    """Every experiment a dot by outcome; the verified best as a step line over experiment number."""
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    xs, running = [0], [best["baseline_loss"]]
    for e in experiments:
        ok = e["state"] == "Accepted" and e.get("improved")
        xs.append(e["number"])
        running.append(min(running[-1], e["loss"]) if ok else running[-1])
    ax.step(xs, running, where="post", color="tab:blue", lw=2, label="verified best (on chain)")
    styles = {"Accepted": dict(marker="o", color="tab:green", label="accepted claim"),
              "Rejected": dict(marker="x", color="tab:red", label="rejected claim"),
              "Report": dict(marker="o", color="tab:gray", label="report (did not beat the best)"),
              "Expired": dict(marker="s", color="tab:gray", label="expired claim")}
    other = dict(marker="D", color="tab:orange", label="pending / not published")
    seen: set[str] = set()
    for e in experiments:
        if e.get("loss") is None:
            continue
        style = dict(styles.get(e["state"], other))
        if e["state"] == "Accepted" and not e.get("improved"):
            style = dict(marker="o", facecolors="none", edgecolors="tab:green", label="accepted, not an improvement")
        if style["label"] in seen:
            style.pop("label")
        else:
            seen.add(style["label"])
        ax.scatter(e["number"], e["loss"], s=60, zorder=3, **style)
        ax.annotate(f"{e['agent']}: {e.get('move') or e['proposer']}", (e["number"], e["loss"]),
                    textcoords="offset points", xytext=(5, 5), fontsize=7, rotation=20)
    losses = [e["loss"] for e in experiments if e.get("loss") is not None]
    if losses and best["baseline_loss"] > max(losses):
        # the untrained baseline sits far above every trained run: keep the runs readable
        span = max(losses) - min(losses) or 0.1
        top = max(losses) + 0.6 * span
        if best["baseline_loss"] > top:
            ax.set_ylim(min(losses) - 0.3 * span, top)
            ax.annotate(f"baseline {best['baseline_loss']:.2f} (untrained), above the chart", (0, top),
                        textcoords="offset points", xytext=(4, -12), fontsize=8, color="tab:blue")
    ax.set_xlabel("experiment number")
    ax.set_ylabel(f"{best['metric']} ({best['units']})")
    ax.set_title("Agents on one task: every experiment, and the verified best")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def format_table(r: AgentsResult) -> list[str]:
    lines = ["", f"  {'#':>2}  {'agent':7} {'move':28} {'built on':10} {'loss':>8}  outcome"]
    for e in r.experiments:
        loss = f"{e['loss']:.4f}" if e.get("loss") is not None else "-"
        what = f"claim {e['claim_id']} {e['state']}" if e.get("claim_id") else e["state"]
        if e["state"] == "Accepted" and not e.get("improved"):
            what += " (verified, but another claim was better first: no reward)"
        lines.append(f"  {e['number']:>2}  {e['agent']:7} {(e.get('move') or e['proposer'])[:28]:28} "
                     f"{e['base_ref']:10} {loss:>8}  {what}")
    b = r.best
    lines += ["", f"best model of task {r.task_id}: claim {b['claim_id']} by {b['trainer_name']}, {b['metric']} "
                  f"{b['loss']:.4f} (baseline {b['baseline_loss']:.4f})",
              f"chart: {r.chart}    summary: {Path(r.chart).parent / 'summary.json'}    ({r.seconds}s)"]
    return lines
