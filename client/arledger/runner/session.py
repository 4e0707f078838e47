"""A training session: one experiment, its data, model and optimizer, driven step by step.

The same class runs the trainer's loop and the verifier's replay worker, so both
execute literally the same code for a step: seed the global RNG from (seed, step),
draw the batch with a generator seeded from (seed, step), call ``train_step``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

import torch

from arledger import checkpoint
from arledger.runner import determinism
from arledger.runner.budget import flop_counter
from arledger.runner.experiment import Experiment

StepCallback = Callable[[int, float], None]


class Session:
    """Model + optimizer + data for one experiment and seed; ``step`` counts optimizer steps."""

    def __init__(self, experiment: Experiment, data_paths: dict[str, Path], seed: int, threads: int,
                 count_startup: bool = False):
        determinism.configure(threads)
        self.experiment = experiment
        self.seed = int(seed)
        self.threads = int(threads)
        # FLOPs counted (arledger.runner.budget): start-up (load_data + build) if asked, and
        # the steps train_steps(..., count=n) counted; the largest single counted step.
        self.startup_flops: int | None = None
        self.counted_flops = 0
        self.counted_steps = 0
        self.max_step_flops = 0
        with _counting(count_startup) as counter:
            self.data = experiment.load_data(data_paths)
            # Model initialisation draws from the global RNG: seed it from (seed, "init").
            torch.manual_seed(determinism.derive_seed(self.seed, "init"))
            self.model, self.optimizer = experiment.build(self.data)
        if counter is not None:
            self.startup_flops = counter.total
        self.step = 0

    def train_steps(self, n: int, data: Any = None, on_step: StepCallback | None = None, count: int = 0) -> float:
        """Run ``n`` optimizer steps from ``self.step``; returns the last loss.

        ``count``: count the FLOPs of the first ``count`` of them (batch drawing included):
        the verifier counts every step it replays, the trainer a sample.
        ``data`` overrides the session's data (tests use it to forge a segment trained
        on other data; production code never passes it).
        """
        data = self.data if data is None else data
        loss = float("nan")
        self.model.train()
        for j in range(n):
            with _counting(j < count) as counter:
                determinism.seed_step(self.seed, self.step)
                rng = determinism.step_generator(self.seed, self.step)
                batch = self.experiment.batch(data, rng, self.step)
                loss = self.experiment.train_step(self.model, self.optimizer, batch)
            if counter is not None:
                self.counted_flops += counter.total
                self.counted_steps += 1
                self.max_step_flops = max(self.max_step_flops, counter.total)
            self.step += 1
            if on_step:
                on_step(self.step, loss)
        return loss

    def capture(self) -> bytes:
        """Canonical checkpoint bytes of the current state."""
        return checkpoint.capture(self.model, self.optimizer, self.step)

    def restore(self, data: bytes, source: str = "checkpoint") -> None:
        self.step = checkpoint.restore(data, self.model, self.optimizer, source)

    def weights(self) -> bytes:
        return checkpoint.weights_bytes(self.model)


@contextlib.contextmanager
def _counting(on: bool):
    """A FLOP counter around the block when ``on`` (yields it), else nothing (yields None)."""
    if not on:
        yield None
        return

    with flop_counter() as counter:
        yield counter
