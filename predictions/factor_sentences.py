"""The risk factors' plain-language sentences, in the reader's language.

``ml.explanation`` stores each factor as data (the feature, the value's parts in ``shown``, the
direction, the points, the observed rate) with an English ``text`` beside it; ``ml`` knows no
Django, so the words a person reads are composed here, with gettext, when a page or an API
response shows them. The label is the institution's label of the feature in the active language
(``students.selectors.feature_labels_shown``), else the label stored with the factor.

Factors stored before ``shown`` existed hold only the English sentence and value (``text``,
``display_value``): in English their stored sentence is shown as it always was; in another
language the sentence is composed from their direction, points and observed rate, with the value
read back from the English where that is unambiguous ("not recorded", "yes", "no", "2 of 6") and
otherwise shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import get_language, gettext, ngettext

from institutions.locale_numbers import local_number
from institutions.models import Institution
from students.selectors import feature_labels_shown

_COUNT_OF = re.compile(r"^(-?\d+(?:\.\d+)?) of (-?\d+(?:\.\d+)?)$")


def points_phrase(points: float) -> str:
    """Percentage points of the shown risk: "12 points", "0.4 points", "1 point", "under 0.1 points"."""
    size = abs(float(points))
    shown = round(size) if size >= 9.95 else round(size, 1)
    if shown == 0:
        return gettext("under %(points)s points") % {"points": local_number(0.1, 1)}
    count = int(shown) if float(shown).is_integer() else 2  # plural forms take whole numbers
    return ngettext("%(points)s point", "%(points)s points", count) % {"points": local_number(shown, 1)}


def _legacy_shown(factor: Mapping[str, Any]) -> dict[str, Any]:
    """``shown`` of a factor stored before it was kept: read back from its English value."""
    value = str(factor.get("display_value") or "")
    if value == "not recorded":
        return {"kind": "missing"}
    if value in {"yes", "no"}:
        return {"kind": "boolean", "value": value == "yes"}
    match = _COUNT_OF.match(value)
    if match and str(factor.get("text") or "").startswith(f"{value} "):
        return {"kind": "count_of", "count": float(match.group(1)), "of": float(match.group(2))}
    return {"kind": "text", "text": value}


def _reads_english() -> bool:
    return (get_language() or "en").split("-")[0] == "en"


def value_phrase(shown: Mapping[str, Any]) -> str:
    """The value as the reader's language writes it; what an institution entered stays as entered."""
    kind = shown.get("kind")
    if kind == "missing":
        return gettext("not recorded")
    if kind == "boolean":
        return gettext("yes") if shown.get("value") else gettext("no")
    if kind == "category":
        return str(shown.get("label") or shown.get("code") or "")
    if kind == "count_of":
        return gettext("%(count)s of %(total)s") % {
            "count": local_number(shown["count"]), "total": local_number(shown["of"])}
    if kind == "number":
        unit = shown.get("unit") or ""
        return local_number(shown["number"]) + (f" {unit}" if unit else "")
    return str(shown.get("text") or "")


def _subject(shown: Mapping[str, Any], label: str) -> str:
    if shown.get("kind") == "count_of":
        return gettext("%(count)s of %(total)s %(label)s") % {
            "count": local_number(shown["count"]), "total": local_number(shown["of"]), "label": label}
    return gettext("%(label)s: %(value)s") % {"label": label, "value": value_phrase(shown)}


def factor_sentence(factor: Mapping[str, Any], label: str | None = None) -> str:
    """One factor as a sentence in the active language, from the data stored with it."""
    if not factor.get("shown") and factor.get("text") and _reads_english():
        return str(factor["text"])  # stored before its parts were: the English it always showed
    shown = factor.get("shown") or _legacy_shown(factor)
    subject = _subject(shown, label or str(factor.get("label") or factor.get("feature") or ""))
    raises = float(factor.get("contribution") or 0.0) > 0
    points = factor.get("points")
    observed = factor.get("observed")
    if observed and observed.get("contradicts"):
        values = {"subject": subject, "rate": local_number(100 * float(observed["rate"]), 0),
                  "count": local_number(int(observed["count"])),
                  "overall": local_number(100 * float(observed["overall_rate"]), 0)}
        count = int(observed["count"])
        if points is not None:
            values["points"] = points_phrase(points)
            if raises:
                return ngettext(
                    "%(subject)s — +%(points)s given the rest of this record (on its own a good sign: %(rate)s%% of "
                    "%(count)s such student left, against %(overall)s%% overall)",
                    "%(subject)s — +%(points)s given the rest of this record (on its own a good sign: %(rate)s%% of "
                    "%(count)s such students left, against %(overall)s%% overall)", count) % values
            return ngettext(
                "%(subject)s — −%(points)s given the rest of this record (on its own a warning sign: %(rate)s%% of "
                "%(count)s such student left, against %(overall)s%% overall)",
                "%(subject)s — −%(points)s given the rest of this record (on its own a warning sign: %(rate)s%% of "
                "%(count)s such students left, against %(overall)s%% overall)", count) % values
        if raises:
            return ngettext(
                "%(subject)s — counts upward given the rest of this record (on its own a good sign: %(rate)s%% of "
                "%(count)s such student left, against %(overall)s%% overall)",
                "%(subject)s — counts upward given the rest of this record (on its own a good sign: %(rate)s%% of "
                "%(count)s such students left, against %(overall)s%% overall)", count) % values
        return ngettext(
            "%(subject)s — counts downward given the rest of this record (on its own a warning sign: %(rate)s%% of "
            "%(count)s such student left, against %(overall)s%% overall)",
            "%(subject)s — counts downward given the rest of this record (on its own a warning sign: %(rate)s%% of "
            "%(count)s such students left, against %(overall)s%% overall)", count) % values
    if points is not None:
        values = {"subject": subject, "points": points_phrase(points)}
        return (gettext("%(subject)s — raises risk by %(points)s") if raises
                else gettext("%(subject)s — lowers risk by %(points)s")) % values
    return (gettext("%(subject)s — raises risk") if raises else gettext("%(subject)s — lowers risk")) % {
        "subject": subject}


def present_factors(factors: Iterable[Mapping[str, Any]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Copies of stored factors whose ``label``, ``display_value`` and ``text`` are in the active
    language (``labels``: feature key -> the institution's label in that language); the other
    fields (log-odds, points, observed rate...) stay as stored."""
    shown_factors = []
    for factor in factors or []:
        label = labels.get(str(factor.get("feature"))) or str(factor.get("label") or factor.get("feature") or "")
        shown = factor.get("shown") or _legacy_shown(factor)
        shown_factors.append({**factor, "label": label, "display_value": value_phrase(shown),
                              "text": factor_sentence(factor, label)})
    return shown_factors


def institution_factors(*, institution: Institution, factors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`present_factors` with the institution's feature labels in the active language."""
    return present_factors(factors, feature_labels_shown(institution=institution))
