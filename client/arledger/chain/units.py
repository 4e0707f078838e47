"""Amounts are wei (ints) everywhere; these helpers parse and print human units.

Why a parser of our own: CLI flags and TaskSpec fields say "0.5eth" or "1000gwei",
and float arithmetic must never touch money, so parsing goes through ``Decimal``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from arledger.errors import ConfigError
from arledger.micro import from_micro

UNITS: dict[str, int] = {
    "wei": 1,
    "kwei": 10**3,
    "mwei": 10**6,
    "gwei": 10**9,
    "szabo": 10**12,
    "finney": 10**15,
    "eth": 10**18,
    "ether": 10**18,
}

_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_amount(text: str | int, field: str = "amount") -> int:
    """Parse "0.5eth", "1000gwei", "123wei" or a bare integer (wei) into wei.

    A fractional wei is an error (not silently rounded); so is a negative or unknown unit.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{field}: expected an amount like '0.5eth', got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"{field}: amount must not be negative, got {text}")
        return text
    m = _AMOUNT.match(str(text))
    if not m:
        raise ConfigError(f"{field}: expected an amount like '0.5eth', '1000gwei' or '123wei', got {text!r}")
    number, unit = m.group(1), (m.group(2) or "wei").lower()
    if unit not in UNITS:
        raise ConfigError(f"{field}: unknown unit {unit!r} in {text!r} (use one of {', '.join(UNITS)})")
    try:
        wei = Decimal(number) * UNITS[unit]
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ConfigError(f"{field}: cannot parse {text!r}") from exc
    if wei != wei.to_integral_value():
        raise ConfigError(f"{field}: {text!r} is not a whole number of wei")
    return int(wei)


def format_amount(wei: int) -> str:
    """Short human form: "1.5eth", "20gwei", "7wei" (exact, no rounding)."""
    if wei == 0:
        return "0wei"
    for unit in ("eth", "gwei"):
        scale = UNITS[unit]
        if abs(wei) >= scale // 1000:
            text = format(Decimal(wei) / scale, "f")
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{wei}wei"


# -- losses ---------------------------------------------------------------------------------
# One convention for every command (docs/configuration.md, "Numbers in output"): humans read
# a loss as a float in its metric's units; JSON carries the float under the plain name and
# the exact on-chain integer (micro-units, round(loss * 1e6)) under ``<name>_micro``.
# Counts (steps, parameters, FLOPs, gas) are never scaled.

def loss_fields(name: str, micro: int | None) -> dict:
    """``{name: float, name_micro: int}`` for a loss held in micro-units (None stays None)."""
    if micro is None:
        return {name: None, f"{name}_micro": None}
    return {name: from_micro(micro), f"{name}_micro": int(micro)}
