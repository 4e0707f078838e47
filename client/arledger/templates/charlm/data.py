"""The charlm dataset, built deterministically from CPython's bundled pydoc topics.

Why this corpus: ``pydoc_data.topics`` ships with every CPython, so the dataset is
built with no download, and the same Python minor version gives the same bytes.
Rule: topics joined in sorted-key order, non-ASCII characters replaced by ``?``,
the last 10% (by characters) is validation. The CIDs recorded in the manifest pin
the exact bytes, so a different Python cannot silently change the data.

    python -m arledger.templates.charlm.data OUT_DIR   # writes train.txt, val.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

VAL_FRACTION_DENOM = 10  # last 1/10 is validation


def corpus() -> str:
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return "".join(c if ord(c) < 128 else "?" for c in text)


def build() -> dict[str, bytes]:
    """{name: bytes} of the dataset files (ASCII text)."""
    text = corpus().encode("ascii")
    cut = len(text) - len(text) // VAL_FRACTION_DENOM
    return {"train": text[:cut], "val": text[cut:]}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ".")
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in build().items():
        (out / f"{name}.txt").write_bytes(blob)
        print(f"{out / f'{name}.txt'}: {len(blob)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
