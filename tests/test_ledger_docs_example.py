"""The worked example in docs/python-api.md runs as written against a real anvil (docs can't rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.chain

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def test_python_api_example_runs():
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    assert "anvil.stop()" in code  # the example cleans up after itself...
    scope: dict = {}
    try:
        exec(compile(code, str(DOC), "exec"), scope)
    finally:
        if "anvil" in scope:
            scope["anvil"].stop()  # ...and so do we, if it failed half-way
    assert scope["paid"] == 11 * 10**17  # 0.1 eth stake back + 1 eth reward
    assert scope["claim_id"] >= 1 and scope["task_id"] >= 1
