"""Turn raw rows into clean student records, column by column, with a reason for every rejection.

Feature values go through the same rules as single records (:mod:`students.feature_values`),
but each column remembers the verdict for every distinct raw value it has seen: an export of
100,000 rows holds few distinct values per column, so each cell costs one dictionary lookup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from ..feature_values import FeatureValueError, clean_feature_value
from ..models import EnrolmentStatus, FeatureDefinition, FeatureKind, Outcome, Student
from .errors import CellError
from .mapping import ID_JOIN, KNOWN_OUTCOME_WORDS, ImportMappingSpec

# A verdict: (True, cleaned value) or (False, reason).
Verdict = tuple[bool, object]
MAX_NEW_CATEGORIES = 500
_MISSING = object()  # a blank cell in a column that leaves the stored value alone


def _max_length(field_name: str) -> int:
    return Student._meta.get_field(field_name).max_length


def _text_cleaner(field_name: str) -> Callable[[str], Verdict]:
    limit = _max_length(field_name)

    def clean(raw: str) -> Verdict:
        value = raw.strip()
        if len(value) > limit:
            return False, f"longer than {limit} characters"
        return True, value
    return clean


def _email(raw: str) -> Verdict:
    value = raw.strip()
    if not value:
        return True, ""
    try:
        validate_email(value)
    except ValidationError:
        return False, "not a valid email address"
    return True, value


def _outcome_cleaner(outcome_values: Mapping[str, str]) -> Callable[[str], Verdict]:
    accepted = sorted({*outcome_values, *(label for label in Outcome.labels)})

    def clean(raw: str) -> Verdict:
        value = raw.strip()
        if not value:
            return True, _MISSING
        if value in outcome_values:
            return True, outcome_values[value]
        word = value.lower()
        if word in Outcome.values:
            return True, word
        for outcome_value, label in Outcome.choices:
            if word == label.lower():
                return True, outcome_value
        if word in KNOWN_OUTCOME_WORDS:
            return True, str(KNOWN_OUTCOME_WORDS[word])
        shown = ", ".join(accepted[:12])
        return False, f"unknown outcome {value!r}: map it to dropped out, graduated, still enrolled, transferred " \
                      f"or other (known values: {shown})"
    return clean


def _status(raw: str) -> Verdict:
    word = raw.strip().lower().replace(" ", "_")
    if not word:
        return True, _MISSING
    if word in EnrolmentStatus.values:
        return True, word
    return False, f"unknown status {raw.strip()!r}: expected active, on leave or inactive"


def _date(raw: str) -> Verdict:
    value = raw.strip()
    if not value:
        return True, None
    try:
        return True, dt.date.fromisoformat(value[:10])
    except ValueError:
        return False, f"{value!r} is not a date (expected YYYY-MM-DD)"


def _feature_cleaner(definition: FeatureDefinition) -> Callable[[str], Verdict]:
    def clean(raw: str) -> Verdict:
        try:
            return True, clean_feature_value(definition, raw)
        except FeatureValueError as exc:
            return False, str(exc)
    return clean


def _cached(cleaner: Callable[[str], Verdict]) -> Callable[[str], Verdict]:
    cache: dict[str, Verdict] = {}

    def clean(raw: str) -> Verdict:
        try:
            return cache[raw]
        except KeyError:
            verdict = cache[raw] = cleaner(raw)
            return verdict
    return clean


@dataclass
class CleanRecord:
    row: int
    external_id: str
    fields: dict
    features: dict


@dataclass
class RowCleaner:
    """Compiled for one mapping, one header and one schema; call :meth:`clean` per row."""

    spec: ImportMappingSpec
    header: Sequence[str]
    definitions: Mapping[str, FeatureDefinition]
    plan: list[tuple[int, str, str, Callable[[str], Verdict]]] = field(default_factory=list)
    new_categories: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index = {name: position for position, name in enumerate(self.header)}
        self.id_indexes = [index[name] for name in self.spec.id_columns] or [
            index[name] for name in self.spec.columns_for("external_id")
        ]
        for name, column in self.spec.columns.items():
            if column.target in ("ignore", "external_id"):
                continue
            if column.target == "feature":
                cleaner = _feature_cleaner(self.definitions[column.feature])
                destination = f"features.{column.feature}"
            elif column.target == "new_feature":
                definition = new_feature_definition(column)
                if definition.kind == FeatureKind.CATEGORICAL:
                    # A new feature's categories are the values the file holds (labels from the mapping).
                    definition.categories = []
                    self.new_categories[column.feature] = set()
                cleaner = _feature_cleaner(definition)
                destination = f"features.{column.feature}"
            elif column.target == "outcome":
                cleaner, destination = _outcome_cleaner(self.spec.outcome_values), "outcome"
            elif column.target == "status":
                cleaner, destination = _status, "status"
            elif column.target == "outcome_date":
                cleaner, destination = _date, "outcome_date"
            elif column.target == "email":
                cleaner, destination = _email, "email"
            else:
                cleaner, destination = _text_cleaner(column.target), column.target
            self.plan.append((index[name], name, destination, _cached(cleaner)))
        self.id_limit = _max_length("external_id")
        self.id_header = " + ".join(self.spec.id_columns) or next(iter(self.spec.columns_for("external_id")), "")

    def external_id(self, row_number: int, cells: Sequence[str], data_index: int) -> Verdict:
        if self.spec.id_row_prefix:
            return True, f"{self.spec.id_row_prefix}-{data_index:05d}"
        parts = [cells[i].strip() for i in self.id_indexes]
        if not all(parts):
            return False, "the student's id is missing"
        value = ID_JOIN.join(parts)
        if len(value) > self.id_limit:
            return False, f"the id is longer than {self.id_limit} characters"
        return True, value

    def clean(self, row_number: int, cells: Sequence[str], data_index: int,
              errors: list[CellError] | None) -> CleanRecord | None:
        """The cleaned record, or None when any cell is rejected (each rejection appended to errors)."""
        ok, external_id = self.external_id(row_number, cells, data_index)
        failed = not ok
        if failed and errors is not None:
            errors.append(CellError(row_number, self.id_header, ID_JOIN.join(cells[i] for i in self.id_indexes),
                                    external_id))
        fields: dict = {}
        features: dict = {}
        for position, name, destination, cleaner in self.plan:
            raw = cells[position]
            ok, value = cleaner(raw)
            if not ok:
                failed = True
                if errors is not None:
                    errors.append(CellError(row_number, name, raw, value))
                continue
            if value is _MISSING:
                continue
            if destination.startswith("features."):
                key = destination[9:]
                features[key] = value
                if key in self.new_categories and value is not None:
                    self.new_categories[key].add(value)
            else:
                fields[destination] = value
        if failed:
            return None
        return CleanRecord(row_number, external_id, fields, features)

    def category_overflow(self) -> list[str]:
        return [key for key, values in self.new_categories.items() if len(values) > MAX_NEW_CATEGORIES]


def new_feature_definition(column) -> FeatureDefinition:
    """An unsaved definition for a column mapped to a new feature (saved at commit)."""
    return FeatureDefinition(
        key=column.feature, label=column.label or column.feature, kind=column.kind,
        min_value=column.min_value if column.kind == FeatureKind.NUMERIC else None,
        max_value=column.max_value if column.kind == FeatureKind.NUMERIC else None,
        categories=list(column.categories) if column.kind == FeatureKind.CATEGORICAL else [],
        protected=column.protected, actionable=column.actionable, unit=column.unit,
    )
