"""Dishonest trainers, for the demo, the tests and the detection benchmark.

Each attack is a ``train_segment`` replacement for ``run_experiment``: it trains like
the honest loop except in the segments it forges, and the run then publishes a
perfectly well-formed manifest over the forged checkpoints (what a real cheater
would do). Verification must catch it by replaying.

- ``forged_jump``: one segment's end state comes from MORE training than claimed
  (``extra`` x the segment's steps), with the step counter rewound so it looks
  consistent: "weights swapped in from a run with more steps";
- ``data_substitution``: one segment trains on other data (the validation split —
  the classic way to buy a lower validation loss);
- ``spread_small``: every ``every``-th segment skips a few of its steps (many small
  forgeries, each moving the weights a little).
"""

from __future__ import annotations

from typing import Callable, Iterable

Segmenter = Callable  # (session, i, k, on_step) -> None


def _honest(session, k, on_step):
    session.train_steps(k, on_step=on_step)


def forged_jump(segments: Iterable[int], extra: int = 3) -> Segmenter:
    targets = set(segments)

    def train(session, i, k, on_step):
        if i not in targets:
            return _honest(session, k, on_step)
        session.train_steps(extra * k, on_step=None)
        session.step -= (extra - 1) * k  # claim only k steps were taken

    return train


def swap_to_validation(session):
    """The session's data with its training split replaced by the held-out split.

    Claim code is never handed the held-out split, so the cheater takes it where any
    trainer can: the task harness builds it (the run dir holds the harness next to
    the code), and the experiment's own ``load_data`` reads it as if it were training data.
    """
    import tempfile
    from pathlib import Path

    from arledger.harness import load_harness

    h = load_harness(Path(session.experiment.directory).parent / "harness")
    blobs = h.build_data()
    held = sorted(k for k in blobs if k not in h.train_splits)[0]
    with tempfile.NamedTemporaryFile(prefix="heldout-", delete=False) as fh:
        fh.write(blobs[held])
    return session.experiment.load_data({name: Path(fh.name) for name in h.train_splits})


def data_substitution(segments: Iterable[int]) -> Segmenter:
    targets = set(segments)

    def train(session, i, k, on_step):
        if i not in targets:
            return _honest(session, k, on_step)
        session.train_steps(k, data=swap_to_validation(session), on_step=on_step)

    return train


def spread_small(every: int = 2, skipped_steps: int = 1) -> Segmenter:
    def train(session, i, k, on_step):
        if i % every:
            return _honest(session, k, on_step)
        session.train_steps(k - skipped_steps, on_step=on_step)
        session.step += skipped_steps  # claim the full segment

    return train


ATTACKS = {"forged_jump": forged_jump, "data_substitution": data_substitution, "spread_small": spread_small}
