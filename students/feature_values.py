"""Validate and normalise one student's feature values against the institution's schema.

Stored forms: numeric -> float, categorical -> str (the category's value), boolean -> bool,
missing -> None. Every rejection carries a reason a person can act on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .models import FeatureDefinition, FeatureKind

_TRUE_WORDS = {"1", "true", "yes", "y", "t"}
_FALSE_WORDS = {"0", "false", "no", "n", "f"}


class FeatureValueError(ValueError):
    """One value that does not fit its feature; the message is the reason."""


@dataclass(frozen=True)
class FeatureValuesInvalid(Exception):
    errors: dict[str, str]

    def __str__(self) -> str:
        return "; ".join(f"{key}: {reason}" for key, reason in self.errors.items())


def _is_missing(raw: object) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and math.isnan(raw):
        return True
    return isinstance(raw, str) and raw.strip() == ""


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def clean_numeric(definition: FeatureDefinition, raw: object) -> float:
    if isinstance(raw, bool):
        raise FeatureValueError(f"expected a number, got {raw!r}")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise FeatureValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise FeatureValueError(f"expected a finite number, got {raw!r}")
    low, high = definition.min_value, definition.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{_format_number(low) if low is not None else '-∞'} to " \
                 f"{_format_number(high) if high is not None else '∞'}"
        raise FeatureValueError(f"{_format_number(value)} is outside the valid range {bounds}")
    return value


def clean_categorical(definition: FeatureDefinition, raw: object) -> str:
    value = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw).strip()
    allowed = definition.category_values
    if allowed and value not in allowed:
        shown = ", ".join(allowed[:12]) + (" ..." if len(allowed) > 12 else "")
        raise FeatureValueError(f"{value!r} is not one of the categories ({shown})")
    return value


def clean_boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    word = str(raw).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise FeatureValueError(f"expected yes/no (1/0, true/false), got {raw!r}")


def clean_feature_value(definition: FeatureDefinition, raw: object) -> float | str | bool | None:
    if _is_missing(raw):
        return None
    if definition.kind == FeatureKind.NUMERIC:
        return clean_numeric(definition, raw)
    if definition.kind == FeatureKind.CATEGORICAL:
        return clean_categorical(definition, raw)
    return clean_boolean(raw)


def clean_feature_values(
    definitions: Iterable[FeatureDefinition], values: Mapping[str, object]
) -> dict[str, float | str | bool | None]:
    """Validate every value; raise :class:`FeatureValuesInvalid` listing all problems at once."""
    by_key = {definition.key: definition for definition in definitions}
    cleaned: dict[str, float | str | bool | None] = {}
    errors: dict[str, str] = {}
    for key, raw in values.items():
        definition = by_key.get(key)
        if definition is None:
            errors[key] = "unknown feature; add it to the feature schema first"
            continue
        try:
            cleaned[key] = clean_feature_value(definition, raw)
        except FeatureValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise FeatureValuesInvalid(errors)
    return cleaned


def out_of_range_keys(definitions: Iterable[FeatureDefinition], values: Mapping[str, object]) -> set[str]:
    """Keys whose stored value no longer fits the schema (e.g. after a range was narrowed)."""
    bad: set[str] = set()
    for definition in definitions:
        if definition.key in values:
            try:
                clean_feature_value(definition, values[definition.key])
            except FeatureValueError:
                bad.add(definition.key)
    return bad
