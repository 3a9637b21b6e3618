"""The model card's sentences in the reader's language.

``ml.model_card`` keeps each sentence of the card as data (``statements``: a code per sentence
with its figures) beside its English; the model page words them here, with gettext, in the
language of the page, naming features by the institution's label in that language.

Cards written before ``statements`` existed hold only the English: a sentence that is one of the
fixed ones (the intended use, what is out of scope, the limitations without figures) is
recognised and translated; any other is shown as it was stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext, ngettext

from institutions.locale_numbers import local_decimal
from ml.model_card import FIXED_LIMITATIONS, INTENDED_USE, INTENDED_USE_CODE, OUT_OF_SCOPE_TEXT


def _intended_use() -> str:
    return gettext(
        "Rank and flag currently enrolled students of this institution by their risk of dropping out, so that "
        "advisors can offer support early and spend their limited time where it matters most. The risk and its "
        "factors are a prompt for a conversation, not a verdict.")


def _out_of_scope(code: str) -> str:
    return {
        "decisions": gettext("Admission, funding, grading or disciplinary decisions about a student."),
        "other_students": gettext(
            "Students of another institution, or of programmes and cohorts unlike those it was trained on."),
        "judging_students": gettext(
            "Judging a student's ability or worth: it predicts an outcome that support can change."),
    }[code]


def _fixed_limitation(code: str) -> str:
    return {
        "past_students": gettext(
            "Trained on this institution's past students only; it reflects how students left in the past, "
            "including any past inequities in support."),
        "calibration_drift": gettext(
            "Risks are calibrated on past cohorts. If the student population, programmes or data entry change, "
            "calibration can drift: compare new cohorts' outcomes with the reliability table."),
        "explanations_not_causes": gettext(
            "Explanations describe what the model uses, not causes. Changing an actionable factor in a what-if "
            "shows the model's response, not a guaranteed effect of an intervention."),
        "no_out_of_time": gettext(
            "No out-of-time check: without a cohort/entry term the holdout is a random sample, which can "
            "overstate how well the model will do on next year's students."),
        "proxies": gettext(
            "Protected attributes are left out of the inputs, but other features can act as proxies for them; "
            "the fairness audit is the check on outcomes, not the exclusion."),
    }[code]


def limitation_sentence(entry: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """One limitation of ``statements["limitations"]`` in the active language."""
    code = entry.get("code")
    if code in FIXED_LIMITATIONS:
        return _fixed_limitation(code)
    if code == "small_training_set":
        return gettext(
            "Small training set (%(rows)s students, %(dropped_out)s dropped out): metrics vary noticeably between "
            "folds; read the fold spread before trusting a single figure.") % {
            "rows": entry["rows"], "dropped_out": entry["dropped_out"]}
    if code == "small_fairness_groups":
        return ngettext(
            "Fairness for %(attribute)s: groups %(groups)s have fewer than %(minimum)s student: their figures are "
            "reported but too unstable to count in the largest gaps or the promotion gate.",
            "Fairness for %(attribute)s: groups %(groups)s have fewer than %(minimum)s students: their figures are "
            "reported but too unstable to count in the largest gaps or the promotion gate.",
            int(entry["min_group_size"])) % {
            "attribute": labels.get(entry["attribute"], entry["attribute"]), "groups": ", ".join(entry["groups"]),
            "minimum": entry["min_group_size"]}
    if code == "strong_proxies":
        strong = ", ".join(
            gettext("%(attribute)s (ROC-AUC %(auc)s)") % {
                "attribute": labels.get(item["feature"], item["feature"]), "auc": local_decimal(item["auc"], 2)}
            for item in entry["attributes"])
        return gettext(
            "The inputs predict %(attributes)s well (proxy check): the model can effectively use these attributes "
            "through other inputs; the fairness audit is where their effect on flags is measured.") % {
            "attributes": strong}
    raise ValueError(f"unknown limitation {code!r}")


def _stored_sentence(text: str) -> str:
    """An English sentence of a card written before ``statements``: translated when it is a fixed one."""
    if text == INTENDED_USE:
        return _intended_use()
    for code, english in OUT_OF_SCOPE_TEXT.items():
        if text == english:
            return _out_of_scope(code)
    for code, english in FIXED_LIMITATIONS.items():
        if text == english:
            return _fixed_limitation(code)
    return text


def model_card_sections(card: Mapping[str, Any], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The card's intended use, what is out of scope and its limitations, titled, in the active language
    (``labels``: feature key -> the institution's label in that language)."""
    statements = card.get("statements") or {}
    if statements:
        intended = _intended_use() if statements.get("intended_use") == INTENDED_USE_CODE else card.get(
            "intended_use")
        out_of_scope = [_out_of_scope(code) for code in statements.get("out_of_scope") or []]
        limitations = [limitation_sentence(entry, labels) for entry in statements.get("limitations") or []]
    else:
        intended = _stored_sentence(card["intended_use"]) if card.get("intended_use") else None
        out_of_scope = [_stored_sentence(text) for text in card.get("out_of_scope") or []]
        limitations = [_stored_sentence(text) for text in card.get("limitations") or []]
    sections = []
    if intended:
        sections.append({"title": gettext("Intended use"), "items": None, "text": intended})
    if out_of_scope:
        sections.append({"title": gettext("Out of scope"), "items": out_of_scope, "text": ""})
    if limitations:
        sections.append({"title": gettext("Limitations"), "items": limitations, "text": ""})
    return sections
