"""The local end-to-end demo (`artrain demo`, the README's main command).

On one machine, with no node or key configured: a fresh anvil with the ledger, the
embedded artifact store, a sponsor who creates a sealed task from the charlm template
(its private text drawn from a fresh secret, one shard, docs/sealed-evaluation.md), an
honest trainer who improves on the baseline, a cheater with the same idea whose last
segment secretly trained four times its steps (so her claim beats the honest one, and only
a replay shows how), a memoriser whose ``train.py``
carries the public held-out text and looks the next character up in it, and three
verifiers. The round closes, the sponsor opens the shard, each trainer reveals its loss
on it: the memoriser's public number was a breakthrough, its number on the shard is
worse than the honest one and moves nothing; the forger is challenged and slashed; the
honest claim is accepted and the best pointer moves; everyone withdraws, and it ends
with a summary table and a chart of the best loss.

Everything is real: the contract runs on anvil, artifacts are content-addressed,
verifiers replay sampled segments in the bubblewrap sandbox. Only time is fast-
forwarded (``evm_increaseTime``) past the round and the challenge and voting windows.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib
import matplotlib.pyplot as plt

from arledger import manifest as mf, outdir, queries, sealed, tasks
from arledger.addressbook import AddressBook, FILE as ADDRESS_BOOK
from arledger.attacks import forged_jump, memorising_charlm
from arledger.chain.signer import Signer
from arledger.devnet import LocalChain
from arledger.micro import fmt
from arledger.protocol import run_experiment, RunOptions
from arledger.submit import submit_run
from arstore import EmbeddedStore
from arverifier.check import ClaimChecker
from arverifier.node import NodeConfig, VerifierNode
from arverifier.state import WatcherState

ETH = 10**18


@dataclass
class DemoConfig:
    out: Path = Path("demo-out")
    template: str = "charlm"
    # The task's budget: 8 segments. 160 steps tell the same story as 200 in 4 s less (51.5 s
    # against 55.5 s here), so the demo keeps room under its minute on 2 cores.
    steps: int = 160  # optimizer steps per run
    segment_steps: int = 20
    threads: int = 1
    forge_extra: int = 4  # the cheater's last segment really trains 4x the steps
    quorum: int = 2
    challenge_window: int = 600
    voting_window: int = 300
    round_length: int = 3600  # the task's one sealed round: every claim is committed in it
    force: bool = False  # empty an --out that is not empty and was not made by the demo


@dataclass
class Actor:
    name: str
    role: str
    index: int  # dev account
    address: str = ""
    ledger: Any = None
    withdrawn: int = 0
    spent_gas_wei: int = 0


@dataclass
class DemoResult:
    task_id: int
    claims: list[dict] = field(default_factory=list)
    actors: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    decisions: list[dict] = field(default_factory=list)
    chart: str = ""
    seconds: float = 0.0


class Demo:
    def __init__(self, cfg: DemoConfig, say: Callable[[str], None] = print):
        self.cfg = cfg
        self.say = say
        self.out = Path(cfg.out).resolve()  # workers run elsewhere: no relative paths
        # the parties share this one machine, so they share its timing of the task's baseline
        # (arledger.protocol.timebase); kept under --out, like everything the demo writes
        self.machine = self.out / "machine"

    # -- the story -----------------------------------------------------------------------

    def run(self) -> DemoResult:
        t0 = time.perf_counter()
        # Never a user's files: only a dir an earlier demo made (marker, or its summary) is emptied.
        outdir.claim(self.out, "artrain demo", force=self.cfg.force, empty=True,
                     legacy=(("summary.json", "anvil.log", "store", "runs"),))
        (self.out / "runs").mkdir(parents=True)
        self.say("[1/8] devnet: starting anvil and deploying TrainingLedger")
        # The chain's state is saved in --out, so `artrain dashboard --demo DIR` can show it afterwards.
        with LocalChain.start(log_file=self.out / "anvil.log", state_file=self.out / "chain-state.json") as chain:
            return self._story(chain, t0)

    def _story(self, chain: LocalChain, t0) -> DemoResult:
        cfg = self.cfg
        keys, deployer = chain.keys, chain.ledger
        (self.out / "deployment.json").write_bytes(chain.deployment().to_json())
        store = self.store = EmbeddedStore(self.out / "store")
        actors = [Actor("sponsor", "creates the task", 0), Actor("alice", "honest trainer", 1),
                  Actor("mallory", "cheater (forged last segment)", 2),
                  Actor("eve", "memoriser (public text in code)", 6), Actor("v1", "verifier", 3),
                  Actor("v2", "verifier", 4), Actor("v3", "verifier", 5)]
        book = AddressBook(self.out / ADDRESS_BOOK)  # `artrain dashboard --demo` shows these names
        for a in actors:
            a.ledger = deployer.with_account(Signer.from_key(keys[a.index]))
            a.address = a.ledger.account_address
            book.set(a.name, a.address)
        by = {a.name: a for a in actors}
        self.say(f"      ledger {deployer.address} on {chain.rpc_url}; artifacts in {store.root}")

        self.say(f"[2/8] sponsor: building the {cfg.template} data set and TaskSpec, drawing private text for "
                 "the sealed shard, creating the task")
        template = tasks.experiment_dir_of(cfg.template)
        private = sealed.sample_private(template, 1, self.out / "sponsor" / "private.txt")
        self.sealed_dir = self.out / "sponsor" / "sealed"  # the sponsor's secret: never in the store before its round
        req = tasks.TaskRequest(experiment_dir=template, steps=cfg.steps,
                                segment_steps=cfg.segment_steps, threads=cfg.threads, min_improvement=0.01,
                                terms=tasks.TaskTerms(quorum=cfg.quorum, challenge_window=cfg.challenge_window,
                                                      voting_window=cfg.voting_window, rounds=1,
                                                      round_length=cfg.round_length, open_grace=cfg.round_length),
                                heldout=Path(private["out"]), sealed_dir=self.sealed_dir, time_home=self.machine)
        task_id, spec, spec_cid, _ = tasks.create_task(by["sponsor"].ledger, store, req)
        self.say(f"      task {task_id}: {spec.evaluation['metric']} ({spec.evaluation['units']}), "
                 f"baseline {fmt(spec.baseline_loss_micro, 4)}, budget {spec.steps} steps in "
                 f"{spec.segments} segments, reward 1 ETH, quorum {cfg.quorum}; sealed: one round of "
                 f"{cfg.round_length}s, judged on {private['bytes']} characters nobody else has")

        self.say("[3/8] verifiers v1, v2, v3 register with 1 ETH stake each")
        for name in ("v1", "v2", "v3"):
            by[name].ledger.register_verifier(ETH)

        runs = {"alice": self._train("alice", seed=1, lr_factor=2.0,
                                     hypothesis="twice the template's learning rate: the budget is too short for 3e-3")}
        last = spec.segments - 1
        runs["mallory"] = self._train("mallory", seed=2, train_segment=forged_jump([last], cfg.forge_extra),
                                      lr_factor=2.0, hypothesis="twice the template's learning rate",
                                      note=f"alice's idea, and segment {last} secretly trained {cfg.forge_extra}x "
                                           f"its {cfg.segment_steps} steps")
        public = self._public_text(spec, store)
        eve_code = memorising_charlm(template, [public], self.out / "code" / "eve")
        runs["eve"] = self._train("eve", seed=3, code=eve_code,
                                  note=f"train.py carries the public held-out text ({len(public)} characters)")
        for who in ("alice", "mallory", "eve"):
            s = submit_run(by[who].ledger, store, runs[who], task_id, time_home=self.machine)
            self.say(f"      {who}: claim {s.claim_id} revealed in round 0 with its code and weights, no loss yet; "
                     f"its own estimate on the public split {fmt(self._public_loss(runs[who]), 4)}")

        self.say("[5/8] round 0 closes; the sponsor opens its shard; each trainer reveals its loss on it")
        chain.advance(cfg.round_length)
        opened = sealed.open_round(by["sponsor"].ledger, store, task_id, 0, self.sealed_dir)
        self.say(f"      sponsor: shard {opened['shard_cid']} opened ({opened['bytes']} bytes, proof checked on chain)")
        for who in ("alice", "mallory", "eve"):
            s = submit_run(by[who].ledger, store, runs[who], task_id, time_home=self.machine).sealed
            self.say(f"      {who}: {spec.evaluation['metric']} on the shard {s['claimed_loss']:.4f} (public "
                     f"{fmt(self._public_loss(runs[who]), 4)}), the baseline on it {s['incumbent_loss']:.4f}")

        self.say("[6/8] verifiers: evaluating on the shard, sampling segments from the chain seed, replaying them "
                 "in the sandbox")
        nodes = self._nodes(by, store)
        since = deployer.block_number()
        decisions = self._until_quiet(nodes)

        self.say(f"[7/8] time passes: voting window ({cfg.voting_window}s), then challenge window "
                 f"({cfg.challenge_window}s); disputes resolve, claims finalize, fees settle")
        chain.advance(cfg.voting_window + 1)
        decisions += self._until_quiet(nodes)
        self._resolutions(deployer, {a.address.lower(): a.name for a in actors}, since)
        chain.advance(cfg.challenge_window + 1)
        decisions += self._until_quiet(nodes)

        self.say("[8/8] everyone withdraws what the ledger owes them")
        for a in actors:
            owed = a.ledger.balance_of(a.address)
            if owed:
                tx = a.ledger.withdraw()
                a.withdrawn = owed
                self.say(f"      {a.name:8} withdrew {owed / ETH:.4f} ETH (tx {tx.tx_hash[:12]}…)")
        for n in nodes:
            n.checker.close()
            n.state.close()
        return self._summary(task_id, by, store, decisions, t0, runs)

    # -- pieces --------------------------------------------------------------------------

    def _train(self, who: str, seed: int, train_segment=None, note: str = "", lr_factor: float | None = None,
               hypothesis: str | None = None, code: Path | None = None) -> Path:
        cfg = self.cfg
        code = code or tasks.experiment_dir_of(cfg.template)
        if lr_factor:  # a change of the recipe: the dashboard shows it as the claim's diff
            mine = self.out / "code" / who
            shutil.copytree(code, mine, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
            spec = json.loads((mine / "experiment.json").read_text())
            spec["config"]["lr"] = round(spec["config"]["lr"] * lr_factor, 8)
            (mine / "experiment.json").write_text(json.dumps(spec, indent=2) + "\n")
            code = mine
        self.say(f"[4/8] {who}: training {cfg.template} for {cfg.steps} steps (seed {seed})"
                 + (f" — {note}" if note else ""))
        out = self.out / "runs" / who
        last_seg = [-1]

        def progress(step, loss, segment, total):
            if segment != last_seg[0] and step % cfg.segment_steps == 0:
                last_seg[0] = segment
                self.say(f"      {who}: step {step:4d}/{total}  segment {segment}  loss {loss:.3f}")

        kwargs = {"train_segment": train_segment} if train_segment else {}
        run_experiment(RunOptions(experiment_dir=code, out=out, steps=cfg.steps,
                                  segment_steps=cfg.segment_steps, seed=seed, threads=cfg.threads,
                                  hypothesis=hypothesis or f"{who}'s run", notes=note,
                                  sandbox=train_segment is None),  # mallory's forger is this process's code
                       on_progress=progress, store=self.store, **kwargs)
        return out

    @staticmethod
    def _public_text(spec, store) -> bytes:
        """The task's public held-out split, as anyone fetches it by the CID in the TaskSpec."""
        held = [k for k in spec.datasets if k not in spec.train_splits]
        return bytes(store.cat(spec.datasets[held[0]]))

    @staticmethod
    def _public_loss(run: Path) -> int:
        return mf.load(run / "manifest.json").evaluation.value_micro

    def _nodes(self, by: dict, store) -> list:
        nodes = []
        for name in ("v1", "v2", "v3"):
            a = by[name]
            d = self.out / "verifiers" / name
            checker = ClaimChecker(store, a.address, workdir=d / "work", home=self.machine)
            node = VerifierNode(a.ledger, store, WatcherState(d / "state.sqlite"), checker,
                                NodeConfig(confirmations=0), emit=lambda rec, name=name: self._decision(name, rec))
            node.name = name
            nodes.append(node)
        return nodes

    def _decision(self, name: str, rec: dict) -> None:
        what = rec["decision"].upper()
        target = f"claim {rec['claim']}" if "dispute" not in rec else f"dispute on claim {rec['claim']}"
        ch = rec.get("challenge") or {}
        if ch.get("kind") == "Segment":  # the evidence a reader checks: the segment and both end states
            detail = (f"segment {ch['segment']}: the claim committed to state {ch['claimed'][:14]}…, "
                      f"replaying it gives {ch['observed'][:14]}…")
        else:
            segs = ",".join(map(str, rec.get("segments") or [])) or str(ch.get("segment", "-"))
            detail = f"segments [{segs}]  {rec['reason'][:90]}"
        self.say(f"      {name}: {target}: {what:9} {detail}  ({rec['seconds']}s)")
        rec["verifier"] = name

    def _resolutions(self, ledger, names: dict, since: int) -> None:
        """What each dispute resolved since block ``since`` moved, in ETH."""
        for ev in ledger.events(since, ledger.block_number(), ["DisputeResolved"]):
            a, claim = ev.args, ledger.claim(ev.args["claimId"])
            d = ledger.dispute(a["disputeId"])
            outcome = d.state.lower()
            who = names.get(claim.trainer.lower(), claim.trainer)
            line = (f"      dispute on claim {a['claimId']} {outcome} {a['votesUphold']}-{a['votesDismiss']}: ")
            if d.state == "Upheld":
                line += (f"{who}'s stake of {claim.stake / ETH:.4f} ETH is lost; "
                         f"{names.get(d.challenger.lower(), d.challenger)} (challenger) is paid "
                         f"{a['challengerPaid'] / ETH:.4f} ETH, each voter {a['perVoterShare'] / ETH:.4f} ETH")
            else:
                line += f"{who} is paid {a['trainerPaid'] / ETH:.4f} ETH; the challenger's bond is lost"
            self.say(line)

    def _until_quiet(self, nodes, rounds: int = 6) -> list[dict]:
        decisions: list[dict] = []
        for _ in range(rounds):
            busy = False
            for node in nodes:
                rep = node.step()
                for rec in rep.decisions:
                    rec["verifier"] = node.name
                decisions += rep.decisions
                for tx in rep.transactions:
                    busy = True
                    what = " ".join(f"{k} {v}" for k, v in tx.items() if k in ("claim", "action"))
                    if "dispute" in tx and "claim" not in tx:
                        what = f"dispute {tx['dispute'][:10]}… {tx['action']}"
                    self.say(f"      {node.name}: tx {what} (gas {tx['gas']})")
            if not busy:
                break
        return decisions

    # -- the ending ----------------------------------------------------------------------

    def _summary(self, task_id, by, store, decisions, t0, runs) -> DemoResult:
        ledger = by["sponsor"].ledger
        claims = queries.history(ledger, task_id)
        best = queries.best_model(ledger, store, task_id)
        names = {a.address.lower(): a.name for a in by.values()}
        for c in claims:
            c["trainer_name"] = names.get(c.get("trainer", "").lower(), "?")
            if c["trainer_name"] in runs:  # the trainer's own number on the public split, beside the shard's
                c["public_loss"] = self._public_loss(runs[c["trainer_name"]]) / 1e6
        actors = [{"name": a.name, "role": a.role, "address": a.address, "withdrawn_eth": a.withdrawn / ETH}
                  for a in by.values()]
        chart = self._chart(claims, best, self.out / "best-loss.png")
        result = DemoResult(task_id, claims, actors, best, decisions, str(chart), round(time.perf_counter() - t0, 1))
        (self.out / "summary.json").write_text(json.dumps(result.__dict__, indent=2, default=str))
        return result

    def _chart(self, claims: list[dict], best: dict, path: Path) -> Path:
        fig = chart_figure(claims, best)
        fig.savefig(path)
        plt.close(fig)
        return path


def chart_figure(claims: list[dict], best: dict):
    """The best-loss chart: the verified best as a step line, each claim a mark by outcome."""
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    xs = list(range(len(claims) + 1))
    running = [best["baseline_loss"]]
    for c in claims:
        ok = c["state"] == "Accepted" and c.get("improved")
        running.append(min(running[-1], c["claimed_loss"]) if ok else running[-1])
    ax.step(xs, running, where="post", color="tab:blue", lw=2, label="verified best (on chain)")
    # Every mark in the legend, by outcome: a rejected claim's low number is its lie,
    # drawn as a red cross so it never reads as a result.
    styles = {"Accepted": dict(marker="o", color="tab:green", label="accepted claim"),
              "Rejected": dict(marker="x", color="tab:red", label="rejected claim (its claimed loss)"),
              "Expired": dict(marker="s", color="tab:gray", label="expired claim")}
    pending = dict(marker="D", color="tab:orange", label="pending claim")
    seen: set[str] = set()
    for i, c in enumerate(claims, start=1):
        style = dict(styles.get(c["state"], pending))
        if style["label"] in seen:
            style.pop("label")
        else:
            seen.add(style["label"])
        ax.scatter(i, c["claimed_loss"], s=80, zorder=3, **style)
        ax.annotate(f"#{c['claim_id']} {c['trainer_name']}\n{c['state']}", (i, c["claimed_loss"]),
                    textcoords="offset points", xytext=(8, 6), fontsize=8)
    ax.scatter([0], [best["baseline_loss"]], s=60, color="tab:blue", marker="s", zorder=3, label="baseline")
    ax.annotate("baseline", (0, best["baseline_loss"]), textcoords="offset points", xytext=(8, -12), fontsize=8)
    ax.set_xlim(-0.4, len(claims) + 0.8)
    ax.set_xticks(xs, ["baseline"] + [f"claim {c['claim_id']}" for c in claims])
    ax.set_ylabel(f"{best['metric']} ({best['units']})")
    ax.set_title("Best model on the ledger, claim by claim")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def format_summary(r: DemoResult) -> list[str]:
    lines = ["", "claims (loss on the sealed shard; the trainer's own number on the public split beside it):",
             f"  {'id':>3}  {'trainer':8} {'shard loss':>10} {'public':>8}  {'state':9} {'improved':8} reward"]
    for c in r.claims:
        public = f"{c['public_loss']:>8.4f}" if c.get("public_loss") is not None else f"{'-':>8}"
        lines.append(f"  {c['claim_id']:>3}  {c['trainer_name']:8} {c['claimed_loss']:>10.4f} {public}  {c['state']:9} "
                     f"{str(bool(c['improved'])):8} {c['reward'] / ETH:.2f} ETH")
    lines += ["", "money out of the ledger:"]
    for a in r.actors:
        lines.append(f"  {a['name']:8} {a['role']:32} {a['withdrawn_eth']:.4f} ETH")
    b = r.best
    who = {a["address"].lower(): a["name"] for a in r.actors}.get((b["trainer"] or "").lower())
    lines += ["", f"best model of task {r.task_id}: claim {b['claim_id']} by {who + ' ' if who else ''}{b['trainer']}, "
                  f"{b['metric']} {b['loss']:.4f} {b['units']} (baseline {b['baseline_loss']:.4f})",
              f"  code {b['code_cid']}", f"  weights {b['weights_cid']}",
              f"chart: {r.chart}    summary: {Path(r.chart).parent / 'summary.json'}    ({r.seconds}s)"]
    return lines
