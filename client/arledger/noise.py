"""How much honest runs differ by luck: the epsilon a task needs (docs/sealed-evaluation.md).

A claim must beat its incumbent by more than the spread of honest runs, or the luckiest of
twenty seeds moves the pointer. ``measure`` trains the experiment with several seeds to the
task's budget (sandboxed, as ``artrain run``) and evaluates each on the public held-out split
and on every shard:

- ``seed_sigma``: the spread over seeds on one shard (pooled over shards), the noise a
  head-to-head comparison on one shard sees;
- ``shard_sigma``: the spread over shards of the seeds' mean, how much shards differ in
  difficulty (what comparing on the same shard removes);
- ``public_sigma``: the spread over seeds on the public split.

The proposed epsilon is ``EPSILON_SIGMAS`` times the larger of the seed spreads.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from arledger import sealed
from arledger.errors import SealedError
from arledger.execution import isolation, kernels
from arledger.harness import load_harness
from arledger.micro import from_micro, to_micro
from arledger.protocol import artifacts, run_experiment, RunOptions
from arledger.protocol.replay import ArtifactSource, Replay
from arledger.protocol.shard import evaluate_on_shard, heldout_split
from arledger.runner.experiment import read_spec

EPSILON_SIGMAS = 3


@dataclass(frozen=True)
class NoiseRequest:
    """Seeds of ``experiment_dir`` to train (``steps`` in segments of ``segment_steps``) and the
    shard files to evaluate them on (none: the public split only)."""

    experiment_dir: Path
    workdir: Path
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    steps: int | None = None
    segment_steps: int | None = None
    shards: tuple[Path, ...] = ()
    cpu_kernels: str = kernels.DEFAULT_PIN


@dataclass
class Noise:
    metric: str
    seeds: list[int]
    public: list[float]  # per seed
    shards: list[list[float]] = field(default_factory=list)  # [seed][shard]
    seed_sigma: float = 0.0
    shard_sigma: float | None = None
    public_sigma: float = 0.0
    epsilon: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epsilon_micro": to_micro(self.epsilon), "epsilon_sigmas": EPSILON_SIGMAS}


def measure(req: NoiseRequest, store: Any, say: Callable[[str], None] = lambda _: None) -> Noise:
    if len(req.seeds) < 2:
        raise SealedError(f"--seeds: {len(req.seeds)} seed(s); a spread needs at least two")
    public, on_shards, metric = [], [], ""
    for seed in req.seeds:
        say(f"seed {seed}: training")
        out = Path(req.workdir) / f"seed-{seed}"
        res = run_experiment(RunOptions(req.experiment_dir, out, steps=req.steps, segment_steps=req.segment_steps,
                                        seed=seed, cpu_kernels=req.cpu_kernels, force=True), store=store)
        m = res.manifest
        metric = m.experiment["metric"]
        public.append(from_micro(m.evaluation.value_micro))
        on_shards.append(_on_shards(m, out, req, store) if req.shards else [])
        say(f"seed {seed}: {metric} {public[-1]:.6f} public" + (
            f", shards {' '.join(f'{v:.6f}' for v in on_shards[-1])}" if req.shards else ""))
    noise = Noise(metric, list(req.seeds), public, on_shards, public_sigma=statistics.stdev(public))
    if req.shards:
        per_shard = list(zip(*on_shards))  # [shard][seed]
        noise.seed_sigma = statistics.fmean(statistics.stdev(col) for col in per_shard)
        means = [statistics.fmean(col) for col in per_shard]
        noise.shard_sigma = statistics.stdev(means) if len(means) > 1 else None
    noise.epsilon = EPSILON_SIGMAS * max(noise.seed_sigma, noise.public_sigma)
    return noise


def _on_shards(m: Any, run_dir: Path, req: NoiseRequest, store: Any) -> list[float]:
    """The run's final weights on each shard, its code and the harness sandboxed."""
    iso = isolation.Isolation.of(True, kernel_env=kernels.env_for(req.cpu_kernels))
    src = ArtifactSource(m, run_dir / "noise", run_dir=run_dir, store=store)
    r = Replay(None, src, isolation.executor(iso), isolation.executor(iso, "harness"),
               int(m.environment["threads"]), m.seed)
    split = heldout_split(m.datasets, tuple(m.train_splits))
    out = []
    for shard in req.shards:
        ev = evaluate_on_shard(r, Path(shard), split, src.weights())
        if not ev.ok:
            raise SealedError(f"seed {m.seed} on {shard}: {ev.problem}")
        out.append(ev.metrics[m.experiment["metric"]])
    return out


def shard_files(experiment_dir: Path, heldout: Path, rounds: int, dest: Path) -> tuple[Path, ...]:
    """``heldout`` cut into ``rounds`` shards as a sealed task would cut it, written under ``dest``."""
    experiment_dir = Path(experiment_dir)
    h = load_harness(artifacts.harness_dir_of(experiment_dir, read_spec(experiment_dir)))
    try:
        raw = Path(heldout).read_bytes()
    except OSError as exc:
        raise SealedError(f"--heldout {heldout}: {exc.strerror or exc}") from None
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for r, data in enumerate(sealed.cut(h, raw, rounds)):
        (dest / f"shard-{r:04d}.bin").write_bytes(data)
        out.append(dest / f"shard-{r:04d}.bin")
    return tuple(out)
