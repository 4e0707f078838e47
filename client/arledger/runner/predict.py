"""The model's outputs on inputs the harness chose: the only thing claim code contributes
to an evaluation.

The worker (``mode: predict``) loads the claim's model from a checkpoint or the final
weights and runs its forward on each named input tensor, in fixed chunks, in eval mode
with gradients off and the global RNG seeded from ``(seed, "step", -1)``: the same bits
on every machine of the environment, whoever runs it. The outputs go to a file that a
different process (the harness) reads, validates and scores; the targets are never in
this process.
"""

from __future__ import annotations

import torch

from arledger.runner import determinism

CHUNK_ROWS = 64  # fixed: the bits of a row's output may depend on the batch it was computed in


def predict(model: torch.nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    """``model(x)`` in chunks of ``CHUNK_ROWS`` rows, eval mode, no grad, seeded."""
    model.eval()
    determinism.seed_step(seed, -1)
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), CHUNK_ROWS):
            out = model(x[i : i + CHUNK_ROWS])
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"the model's forward returned {type(out).__name__}, not a tensor")
            outs.append(out.detach().contiguous())
    return torch.cat(outs) if outs else torch.empty(0)
