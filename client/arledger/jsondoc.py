"""Canonical JSON documents that live in one IPFS block: the manifest and the TaskSpec.

Both are addressed on chain by the sha256 of their bytes, so both share one
serialization (sorted keys, no whitespace, ASCII, no NaN), one size limit (one
256 KiB block, so the CID is always CIDv1 raw of that digest) and one way of
reporting a schema violation (the JSON pointer of the first, shallowest error).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

MAX_BLOCK_BYTES = 256 * 1024


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


@lru_cache(maxsize=None)
def schema_file(name: str) -> dict[str, Any]:
    """``schemas/<name>.schema.json`` from the arledger package, as written (a document module
    completes its own: the TaskSpec's ``limits`` come from ``Limits``). Do not modify it."""
    return json.loads(resources.files("arledger").joinpath(f"schemas/{name}.schema.json").read_text())


def first_schema_error(doc: Any, schema: dict[str, Any]) -> str | None:
    """``"/json/pointer: message"`` of the shallowest violation of ``schema``, or None."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return None
    err = errors[0]
    return "/" + "/".join(str(p) for p in err.absolute_path) + f": {err.message}"


def parse_block(data: bytes, source: str, error: type[Exception]) -> Any:
    """Size-check then parse one document; raises ``error`` naming ``source``."""
    if len(data) > MAX_BLOCK_BYTES:
        raise error(f"{source}: {len(data)} bytes exceeds the {MAX_BLOCK_BYTES}-byte limit (one IPFS block)")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{source}: not valid JSON ({exc})") from exc
