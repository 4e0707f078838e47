"""Checkpoints and the state hash: one canonical safetensors file per segment boundary.

Why a hand-written writer: the state hash is ``sha256(file bytes)``, so the bytes must
be a pure function of the training state. ``torch.save`` embeds file names and pickle
details; the safetensors library's layout is an implementation detail that may change
between versions. This module writes the safetensors format itself, with a fixed rule
(tensor names sorted, JSON header with sorted keys and no whitespace, header padded
with spaces to 8 bytes, data in name order), so any safetensors reader can load it
and the same state always gives the same bytes. See docs/checkpoint-format.md.

Names inside a checkpoint:

- ``model.<state_dict key>``            parameters and buffers
- ``optim.state.<param index:06d>.<key>`` optimizer state tensors (e.g. Adam moments, step)
- ``rng.torch_cpu``                     torch's global CPU generator state (uint8)
- ``runner.step`` / ``runner.data_cursor`` int64 scalars

Non-tensor optimizer data (param_groups hyper-parameters, python-number state) goes in
the header metadata as canonical JSON under ``optim``; ``format`` names this format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from arledger.errors import CheckpointError
from arledger.files import atomic_write  # noqa: F401 - the worker writes checkpoints with it

FORMAT = "arledger-checkpoint/1"
WEIGHTS_FORMAT = "arledger-weights/1"

_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_DTYPES_BACK = {v: k for k, v in _DTYPES.items()}


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def serialize(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """Canonical safetensors bytes of ``tensors`` (sorted names, deterministic header)."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach()
        if t.dtype not in _DTYPES:
            raise CheckpointError(f"tensor {name!r}: dtype {t.dtype} is not supported")
        t = t.to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    head = _canonical_json(header).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + b"".join(chunks)


def deserialize(data: bytes, source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse safetensors bytes into (tensors, metadata); ``source`` names the file in errors."""
    try:
        n = int.from_bytes(data[:8], "little")
        if len(data) < 8 + n:
            raise ValueError("header length beyond end of file")
        header = json.loads(data[8 : 8 + n])
        body = memoryview(data)[8 + n :]
        meta = header.pop("__metadata__", {}) or {}
        out: dict[str, torch.Tensor] = {}
        for name, info in header.items():
            dtype = _DTYPES_BACK[info["dtype"]]
            start, end = info["data_offsets"]
            if not (0 <= start <= end <= len(body)):
                raise ValueError(f"tensor {name!r}: data_offsets out of range")
            buf = bytearray(body[start:end])
            flat = torch.frombuffer(buf, dtype=torch.uint8) if buf else torch.empty(0, dtype=torch.uint8)
            out[name] = flat.view(dtype).reshape(info["shape"]).clone()
        return out, meta
    except CheckpointError:
        raise
    except Exception as exc:  # malformed header, unknown dtype, bad shape
        raise CheckpointError(f"{source}: not a valid safetensors file ({exc})") from exc


def state_hash(data: bytes) -> str:
    """h_i = sha256 of the checkpoint file bytes, as 0x-prefixed hex."""
    return "0x" + hashlib.sha256(data).hexdigest()


def file_state_hash(path: Path) -> str:
    return state_hash(Path(path).read_bytes())


def capture(model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> bytes:
    """Serialize the full training state (weights, optimizer, RNG, step) canonically."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v
    osd = optimizer.state_dict()
    extra_state: dict[str, dict[str, Any]] = {}
    for idx, pstate in osd["state"].items():
        for key, val in pstate.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optim.state.{int(idx):06d}.{key}"] = val
            else:
                extra_state.setdefault(str(int(idx)), {})[key] = val
    tensors["rng.torch_cpu"] = torch.get_rng_state()
    tensors["runner.step"] = torch.tensor(step, dtype=torch.int64)
    tensors["runner.data_cursor"] = torch.tensor(step, dtype=torch.int64)
    optim_meta = {
        "class": type(optimizer).__name__,
        "param_groups": osd["param_groups"],
        "state_extra": extra_state,
    }
    try:
        meta = {"format": FORMAT, "optim": _canonical_json(optim_meta)}
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"optimizer state: not serializable as canonical JSON ({exc})") from exc
    return serialize(tensors, meta)


def restore(data: bytes, model: torch.nn.Module, optimizer: torch.optim.Optimizer, source: str = "checkpoint") -> int:
    """Load a checkpoint into ``model``/``optimizer`` and the torch RNG; returns the step."""
    tensors, meta = deserialize(data, source)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{source}: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
    optim_meta = json.loads(meta["optim"])
    if optim_meta.get("class") != type(optimizer).__name__:
        raise CheckpointError(
            f"{source}: optimizer class {optim_meta.get('class')!r} != {type(optimizer).__name__!r}"
        )
    msd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(msd, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: model tensors do not fit the model ({exc})") from exc
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim.state."):
            _, _, idx, key = k.split(".", 3)
            state.setdefault(int(idx), {})[key] = v
    for idx, extras in optim_meta["state_extra"].items():
        state.setdefault(int(idx), {}).update(extras)
    optimizer.load_state_dict({"state": state, "param_groups": optim_meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch_cpu"])
    step = int(tensors["runner.step"])
    return step


def weights_bytes(model: torch.nn.Module) -> bytes:
    """Canonical safetensors of the model's parameters and buffers only (the final weights)."""
    return serialize(dict(model.state_dict()), {"format": WEIGHTS_FORMAT})


def weights_of_checkpoint(data: bytes, source: str = "checkpoint") -> bytes:
    """The final weights of the model a checkpoint holds: the same bytes ``weights_bytes``
    gives for that model (its ``model.*`` tensors are the state dict, by the same names)."""
    tensors, _ = deserialize(data, source)
    prefix = "model."
    return serialize({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                     {"format": WEIGHTS_FORMAT})


def load_weights(data: bytes, model: torch.nn.Module, source: str = "weights") -> None:
    tensors, _ = deserialize(data, source)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: tensors do not fit the model ({exc})") from exc


def model_params(data: bytes, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The ``model.*`` floating-point tensors of a checkpoint (for tolerance distances)."""
    tensors, _ = deserialize(data, source)
    return {
        k: v for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point()
    }
