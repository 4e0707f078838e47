"""The task harness's two steps, run in a harness process, never in a claim's:
``make_inputs`` (what the model gets) and ``score`` (validate outputs, compute the metric,
check causality, probe losses). ``arledger.harness`` loads the harness they run.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch

from arledger.errors import HarnessError
from arledger.harness import Harness, HARNESS_FILE

# -- step 1: the inputs ------------------------------------------------------------------


def check_seed(seed_hex: str | None) -> int | None:
    return None if seed_hex is None else int(hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()[:15], 16)


def perturb(x: torch.Tensor, filler: torch.Tensor, seed: int) -> tuple[torch.Tensor, list[list[int]]]:
    """Every row of ``x`` with its inputs after a random cut replaced by other held-out inputs.

    Row r keeps positions 0..cut_r and gets ``filler`` text after it, so a causal model's
    outputs at 0..cut_r are unchanged, bit for bit; a cut at the last position keeps the
    row whole, and then its outputs must not depend on the other (spliced) rows either.
    The cuts come from ``seed`` (the verifier's own), so claim code cannot know them.
    """
    if x.dim() < 2 or x.shape[1] < 2:
        raise HarnessError(f"causality check: inputs of shape {tuple(x.shape)} have no sequence dimension")
    g = torch.Generator().manual_seed(seed)
    rows, t = x.shape[0], x.shape[1]
    if len(filler) < t + 1:
        raise HarnessError(f"causality check: filler has {len(filler)} elements, needs more than {t}")
    out, plan = x.clone(), []
    for r in range(rows):
        # A quarter of the rows stay whole (cut t - 1): all of such a row is compared, so its
        # outputs may not depend on the other, spliced rows either. The rest are cut uniformly.
        whole = int(torch.randint(0, 4, (1,), generator=g)) == 0
        cut = t - 1 if whole else int(torch.randint(0, t - 1, (1,), generator=g))
        if cut < t - 1:
            for _ in range(8):  # the first replaced input must differ, or that position is not tested
                off = int(torch.randint(0, len(filler) - t, (1,), generator=g))
                if not torch.equal(filler[off + cut + 1], x[r, cut + 1]):
                    break
            out[r, cut + 1 :] = filler[off + cut + 1 : off + t]
        plan.append([r, cut])
    return out, plan


def make_inputs(h: Harness, data: Any, *, seed: int | None, probe: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors the model gets (``eval``, ``perturbed``, ``probe_train``, ``probe_val``) and the plan."""
    x, _ = h.module.eval_batch(data)
    tensors = {"eval": x.clone()}
    plan: dict[str, Any] = {"cuts": None}
    if h.causal and seed is not None:
        xp, cuts = perturb(x, h.module.filler(data), seed)
        tensors["perturbed"] = xp
        plan["cuts"] = cuts
    if probe and h.has_probe:
        for split, (px, _) in sorted(h.module.probe_batches(data).items()):
            tensors[f"probe_{split}"] = px.clone()
    return tensors, plan


# -- step 2: the score -------------------------------------------------------------------


def validate(h: Harness, outputs: Any, inputs: torch.Tensor, what: str) -> torch.Tensor:
    """Outputs must be a finite float32 tensor of ``output_shape(inputs)``."""
    want = tuple(h.module.output_shape(inputs))
    if not isinstance(outputs, torch.Tensor):
        raise HarnessError(f"{what}: not a tensor")
    if outputs.dtype != torch.float32:
        raise HarnessError(f"{what}: dtype {outputs.dtype}, the task requires torch.float32")
    if tuple(outputs.shape) != want:
        raise HarnessError(f"{what}: shape {tuple(outputs.shape)}, the task requires {want}"
                           + _last_position_hint(tuple(outputs.shape), want))
    if not bool(torch.isfinite(outputs).all()):
        raise HarnessError(f"{what}: contains NaN or infinite values")
    return outputs


def _last_position_hint(got: tuple, want: tuple) -> str:
    """The one surprise of bringing a GPT from elsewhere: nanoGPT's inference path returns only the
    last position's logits (its ``forward`` without targets), while the harness scores every one."""
    if len(got) == len(want) >= 3 and got[1] == 1 < want[1] and got[0] == want[0] and got[2:] == want[2:]:
        return (": the model returned only the last position's outputs (as nanoGPT's forward does without "
                "targets); return every position's, e.g. self.lm_head(x) on all of x "
                "(docs/experiment-interface.md, \"A model from elsewhere\")")
    return ""


def causality(eval_out: torch.Tensor, perturbed_out: torch.Tensor, cuts: list[list[int]]) -> dict:
    """Rows whose outputs up to their cut changed when only later inputs did (bit-exact)."""
    bad = [[r, c] for r, c in cuts if not torch.equal(eval_out[r, : c + 1], perturbed_out[r, : c + 1])]
    return {"checked": len(cuts), "violations": len(bad), "examples": bad[:5]}


def score(h: Harness, data: Any, outputs: dict[str, torch.Tensor], cuts: list[list[int]] | None) -> dict:
    """Metrics of the eval outputs; the causality check if ``cuts``; raises HarnessError on bad outputs."""
    x, y = h.module.eval_batch(data)
    out = validate(h, outputs.get("eval"), x, "outputs[eval]")
    result: dict[str, Any] = {"metrics": _metrics(h, out, y), "causality": None}
    if cuts is not None:
        pert = validate(h, outputs.get("perturbed"), x, "outputs[perturbed]")
        result["causality"] = causality(out, pert, cuts)
    return result


def probe_losses(h: Harness, data: Any, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """The metric on the fixed train and held-out probe slices (the verifier's suspicion signal)."""
    out = {}
    for split, (px, py) in sorted(h.module.probe_batches(data).items()):
        got = validate(h, outputs.get(f"probe_{split}"), px, f"outputs[probe_{split}]")
        out[split] = _metrics(h, got, py)[h.metric]
    return out


def _metrics(h: Harness, outputs: torch.Tensor, targets: Any) -> dict[str, float]:
    m = h.module.metrics(outputs, targets)
    if not isinstance(m, dict) or h.metric not in m:
        raise HarnessError(f"{h.directory / HARNESS_FILE}: metrics() must return a dict with {h.metric!r}")
    vals = {str(k): float(v) for k, v in m.items()}
    if not all(math.isfinite(v) for v in vals.values()):
        raise HarnessError(f"harness metrics are not finite: {vals}")
    return vals
