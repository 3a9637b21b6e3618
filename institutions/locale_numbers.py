"""Numbers as the active language writes them ("13.67" in English, "13,67" in Spanish and
Portuguese), rounded first: Django's ``number_format`` cuts a float's extra decimals off instead
of rounding them (0.96 with one decimal would read 0.9), so it is given the rounded text."""

from __future__ import annotations

from django.utils import formats


def local_decimal(value: float, digits: int) -> str:
    """``value`` with exactly ``digits`` decimals, rounded: 23.46 -> "23.5" / "23,5"."""
    digits = max(int(digits), 0)
    return formats.number_format(f"{float(value):.{digits}f}", digits or None, use_l10n=True)


def local_number(value: float | int, digits: int = 2) -> str:
    """``value`` with at most ``digits`` decimals, no trailing zeros: 2.0 -> "2", 13.666 -> "13.67" / "13,67"."""
    text = f"{float(value):.{max(int(digits), 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in {"-0", ""}:
        text = "0"
    decimals = len(text.split(".")[1]) if "." in text else None
    return formats.number_format(text, decimals, use_l10n=True)
