"""Validate and normalise one student's feature values against the institution's schema.

Stored forms: numeric -> float, categorical -> str (the category's value), boolean -> bool,
missing -> None. Every rejection carries a reason a person can act on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .models import FeatureDefinition, FeatureKind

# Plain decimal notation, ASCII digits only: "12", "-3.5", ".5", "1e-3". Python's float() also reads
# "1_9" (as 19), "nan", "infinity", " ١٢ " (Arabic-Indic digits) and "0x10"-like text nowhere; none of
# that is a number a student record should be given silently.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# With a decimal comma (chosen in the import's mapping): "12", "-3,5"; no thousands separators.
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+(?:,[0-9]+)?")
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


def parse_plain_number(text: str, *, decimal_comma: bool = False) -> float | None:
    """The number ``text`` writes in plain decimal notation (with a decimal comma if asked), or
    None for anything else (``1_9``, ``nan``, ``1,5`` without the decimal comma, ``1.234,5``...)."""
    text = text.strip()
    if decimal_comma:
        return float(text.replace(",", ".")) if _DECIMAL_COMMA.fullmatch(text) else None
    return float(text) if _PLAIN_DECIMAL.fullmatch(text) else None


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def clean_numeric(definition: FeatureDefinition, raw: object, *, decimal_comma: bool = False) -> float:
    if isinstance(raw, bool):
        raise FeatureValueError(_("expected a number, got %(value)s") % {"value": repr(raw)})
    if isinstance(raw, str):
        value = parse_plain_number(raw, decimal_comma=decimal_comma)
        if value is None:
            example = _("12 or 3,5 (a decimal comma, no thousands separators)") if decimal_comma else \
                _("12 or 3.5 (digits, a '.' for decimals)")
            raise FeatureValueError(_("%(value)s is not a plain decimal number: write it as %(example)s")
                                    % {"value": repr(raw.strip()), "example": example})
    else:
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond any float, e.g. 10**400 in a JSON body
            raise FeatureValueError(_("the number is too large (more than about 1.8e308)")) from None
        except (TypeError, ValueError):
            raise FeatureValueError(_("expected a number, got %(value)s") % {"value": repr(raw)}) from None
    if not math.isfinite(value):
        raise FeatureValueError(_("expected a finite number, got %(value)s") % {"value": repr(raw)})
    low, high = definition.min_value, definition.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = _("%(low)s to %(high)s") % {"low": _format_number(low) if low is not None else "-∞",
                                             "high": _format_number(high) if high is not None else "∞"}
        raise FeatureValueError(_("%(value)s is outside the valid range %(bounds)s")
                                % {"value": _format_number(value), "bounds": bounds})
    return value


def clean_categorical(definition: FeatureDefinition, raw: object) -> str:
    value = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw).strip()
    allowed = definition.category_values
    if allowed and value not in allowed:
        shown = ", ".join(allowed[:12]) + (" ..." if len(allowed) > 12 else "")
        raise FeatureValueError(_("%(value)s is not one of the categories (%(shown)s)")
                                % {"value": repr(value), "shown": shown})
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
    raise FeatureValueError(_("expected yes/no (1/0, true/false), got %(value)s") % {"value": repr(raw)})


def clean_feature_value(definition: FeatureDefinition, raw: object, *,
                        decimal_comma: bool = False) -> float | str | bool | None:
    if _is_missing(raw):
        return None
    if definition.kind == FeatureKind.NUMERIC:
        return clean_numeric(definition, raw, decimal_comma=decimal_comma)
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
            errors[key] = _("unknown feature; add it to the feature schema first")
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
