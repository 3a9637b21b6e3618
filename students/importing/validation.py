"""Turn raw rows into clean student records, column by column, with a reason for every rejection.

Feature values go through the same rules as single records (:mod:`students.feature_values`),
but each column remembers the verdict for every distinct raw value it has seen: an export of
100,000 rows holds few distinct values per column, so each cell costs one dictionary lookup.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import translation
from django.utils.translation import gettext

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
            return False, gettext("longer than %(limit)s characters") % {"limit": limit}
        return True, value
    return clean


def _email(raw: str) -> Verdict:
    value = raw.strip()
    if not value:
        return True, ""
    try:
        validate_email(value)
    except ValidationError:
        return False, gettext("not a valid email address")
    return True, value


def _outcome_cleaner(outcome_values: Mapping[str, str]) -> Callable[[str], Verdict]:
    with translation.override("en"):  # the words a file may hold, whatever the language of the page
        labels = [str(label) for label in Outcome.labels]
    accepted = sorted({*outcome_values, *labels})

    def clean(raw: str) -> Verdict:
        value = raw.strip()
        if not value:
            return True, _MISSING
        if value in outcome_values:
            return True, outcome_values[value]
        word = value.lower()
        # Known words first: "Withdrawn" and "Withdrew" have always meant dropped out, and still do
        # unless the mapping's outcome_values send them to the withdrawn outcome (a re-import of the
        # same file must not change students' outcomes).
        if word in KNOWN_OUTCOME_WORDS:
            return True, str(KNOWN_OUTCOME_WORDS[word])
        if word in Outcome.values:
            return True, word
        shown = ", ".join(accepted[:12])
        return False, gettext("unknown outcome %(value)s: map it to dropped out, graduated, still enrolled, "
                              "transferred, failed, withdrew or other (known values: %(known)s)") % {
                                  "value": repr(value), "known": shown}
    return clean


def _status(raw: str) -> Verdict:
    word = raw.strip().lower().replace(" ", "_")
    if not word:
        return True, _MISSING
    if word in EnrolmentStatus.values:
        return True, word
    return False, gettext("unknown status %(value)s: expected active, on leave or inactive") % {
        "value": repr(raw.strip())}


def _date(raw: str) -> Verdict:
    value = raw.strip()
    if not value:
        return True, None
    try:
        return True, dt.date.fromisoformat(value[:10])
    except ValueError:
        return False, gettext("%(value)s is not a date (expected YYYY-MM-DD)") % {"value": repr(value)}


def _feature_cleaner(definition: FeatureDefinition, *, decimal_comma: bool = False) -> Callable[[str], Verdict]:
    def clean(raw: str) -> Verdict:
        try:
            return True, clean_feature_value(definition, raw, decimal_comma=decimal_comma)
        except FeatureValueError as exc:
            return False, str(exc)
    return clean


class CleanRecord:
    """One valid row: student fields, and feature values (a dict built only when asked for).

    ``features_json``, when set, is the features as a JSON object with the keys in PostgreSQL's
    jsonb order; ``exact_json`` says it is character for character what ``features::text``
    prints for the same values, so comparing the two texts can stand in for comparing dicts.
    """

    __slots__ = ("_columns", "_features", "_keys", "_position", "exact_json", "external_id", "features_json", "fields",
                 "row")

    def __init__(self, row: int, external_id: str, fields: dict, features: dict | None = None, *,
                 keys: Sequence[str] = (), columns: Sequence[Sequence] = (), position: int = 0,
                 features_json: str | None = None, exact_json: bool = False):
        self.row = row
        self.external_id = external_id
        self.fields = fields
        self._features = features
        self._keys = keys  # with columns and position: the values, column by column, of the cleaned chunk
        self._columns = columns
        self._position = position
        self.features_json = features_json
        self.exact_json = exact_json

    @property
    def features(self) -> dict:
        if self._features is None:
            position = self._position
            self._features = dict(zip(self._keys, [column[position] for column in self._columns], strict=True))
        return self._features

    def __repr__(self) -> str:
        return f"CleanRecord(row={self.row!r}, external_id={self.external_id!r}, fields={self.fields!r}, " \
               f"features={self.features!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, CleanRecord):
            return NotImplemented
        return (self.row, self.external_id, self.fields, self.features) == \
            (other.row, other.external_id, other.fields, other.features)

    __hash__ = None


def _json_fragment(prefix: str, value) -> tuple[str, bool]:
    """``"key": <value as JSON>`` and whether jsonb's text output prints the value the same way."""
    text = orjson.dumps(value).decode()
    if isinstance(value, float):
        exact = "e" not in text and text != "-0.0"  # jsonb prints numbers in plain notation, and 0.0 unsigned
    elif isinstance(value, str):
        exact = not any(char < " " for char in value)  # control characters: escapes may differ
    else:
        exact = True
    return prefix + text, exact


def jsonb_key_order(key: str) -> tuple[int, bytes]:
    """How jsonb orders an object's keys (and prints them): shorter first, then bytewise."""
    encoded = key.encode()
    return len(encoded), encoded


@dataclass
class ChunkResult:
    records: list[CleanRecord]
    ids: list[str | None]  # per row of the chunk; None where the id itself is unusable
    bad_rows: set[int]  # line numbers with at least one rejected cell
    errors: list[CellError]


@dataclass
class _Column:
    index: int
    header: str
    destination: str  # a Student field, or the feature key
    is_feature: bool
    cleaner: Callable[[str], Verdict]
    good: dict = field(default_factory=dict)  # raw -> cleaned, for every valid raw value seen
    bad: dict = field(default_factory=dict)  # raw -> reason
    fragments: dict = field(default_factory=dict)  # feature columns: raw -> '"key": <cleaned value as JSON>'
    inexact: set = field(default_factory=set)  # raw values whose JSON jsonb would print differently

    def clean_column(self, values: Sequence[str]) -> list:
        """Cleaned values for a whole column; each distinct raw value is judged once."""
        good, bad = self.good, self.bad
        unseen = set(values).difference(good)
        if bad:
            unseen.difference_update(bad)
        if unseen and self.is_feature:
            prefix = orjson.dumps(self.destination).decode() + ": "
        for raw in unseen:
            ok, value = self.cleaner(raw)
            if ok:
                good[raw] = value
                if self.is_feature:
                    self.fragments[raw], exact = _json_fragment(prefix, value)
                    if not exact:
                        self.inexact.add(raw)
            else:
                bad[raw] = value
        return list(map(good.get, values))


@dataclass
class RowCleaner:
    """Compiled for one mapping, one header and one schema; cleans chunks of rows column by column."""

    spec: ImportMappingSpec
    header: Sequence[str]
    definitions: Mapping[str, FeatureDefinition]
    columns: list[_Column] = field(default_factory=list)
    new_categories: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index = {name: position for position, name in enumerate(self.header)}
        self.id_indexes = [index[name] for name in self.spec.id_columns] or [
            index[name] for name in self.spec.columns_for("external_id")
        ]
        for name, column in self.spec.columns.items():
            if column.target in ("ignore", "external_id"):
                continue
            is_feature = column.target in ("feature", "new_feature")
            if column.target == "feature":
                cleaner = _feature_cleaner(self.definitions[column.feature], decimal_comma=self.spec.decimal_comma)
            elif column.target == "new_feature":
                definition = new_feature_definition(column)
                if definition.kind == FeatureKind.CATEGORICAL:
                    # A new feature's categories are the values the file holds (labels from the mapping).
                    definition.categories = []
                    self.new_categories[column.feature] = set()
                cleaner = _feature_cleaner(definition, decimal_comma=self.spec.decimal_comma)
            elif column.target == "outcome":
                cleaner = _outcome_cleaner(self.spec.outcome_values)
            elif column.target == "status":
                cleaner = _status
            elif column.target == "outcome_date":
                cleaner = _date
            elif column.target == "email":
                cleaner = _email
            else:
                cleaner = _text_cleaner(column.target)
            self.columns.append(_Column(index[name], name, column.feature if is_feature else column.target,
                                        is_feature, cleaner))
            if name == self.spec.program_from:
                self.columns.append(_Column(index[name], name, "program", False, self._program_cleaner(column)))
        features = [column for column in self.columns if column.is_feature]
        self.feature_keys = tuple(column.destination for column in features)
        # The features' JSON is joined from per-value fragments in jsonb's key order (keys are unique:
        # check_mapping refuses two columns filling one feature).
        self.json_columns = sorted(features, key=lambda column: jsonb_key_order(column.destination))
        self.id_limit = _max_length("external_id")
        self.id_header = " + ".join(self.spec.id_columns) or next(iter(self.spec.columns_for("external_id")), "")

    def _program_cleaner(self, column) -> Callable[[str], Verdict]:
        """The program a feature column's value gives (``program_from``): its category's label."""
        categories = self.definitions[column.feature].categories if column.target == "feature" else column.categories
        labels = {str(item["value"]): str(item.get("label") or item["value"]) for item in categories or []}
        text = _text_cleaner("program")

        def clean(raw: str) -> Verdict:
            value = raw.strip()
            return text(labels.get(value, value))
        return clean

    def _ids(self, columns: list[tuple], data_indexes: Sequence[int]) -> tuple[list, list[str]]:
        """(id or None per row, the reason per row where None)."""
        if self.spec.id_row_prefix:
            prefix = self.spec.id_row_prefix
            return [f"{prefix}-{i:05d}" for i in data_indexes], []
        parts = [columns[i] for i in self.id_indexes]
        if len(parts) == 1:
            ids = [value.strip() for value in parts[0]]
        else:
            ids = [ID_JOIN.join(p.strip() for p in row) if all(p.strip() for p in row) else ""
                   for row in zip(*parts, strict=True)]
        reasons = [""] * len(ids)
        missing = gettext("the student's id is missing")
        too_long = gettext("the id is longer than %(limit)s characters") % {"limit": self.id_limit}
        for position, value in enumerate(ids):
            if not value:
                ids[position], reasons[position] = None, missing
            elif len(value) > self.id_limit:
                ids[position], reasons[position] = None, too_long
        return ids, reasons

    def clean_chunk(self, numbers: Sequence[int], data_indexes: Sequence[int],
                    rows: Sequence[Sequence[str]]) -> ChunkResult:
        """Clean rows of the header's width; rows with any rejected cell yield no record."""
        if not rows:
            return ChunkResult([], [], set(), [])
        columns = list(zip(*rows, strict=True))
        ids, id_reasons = self._ids(columns, data_indexes)
        problems: list[tuple[int, int, CellError]] = []
        for position, value in enumerate(ids):
            if value is None:
                raw = ID_JOIN.join(rows[position][i] for i in self.id_indexes)
                problems.append((position, -1, CellError(numbers[position], self.id_header, raw,
                                                         id_reasons[position])))
        feature_values, field_names, field_values = [], [], []
        for order, column in enumerate(self.columns):
            raw_values = columns[column.index]
            cleaned = column.clean_column(raw_values)
            if column.bad and not column.bad.keys().isdisjoint(raw_values):
                for position, raw in enumerate(raw_values):
                    if raw in column.bad:
                        problems.append((position, order, CellError(numbers[position], column.header, raw,
                                                                    column.bad[raw])))
            if column.is_feature:
                feature_values.append(cleaned)
                if column.destination in self.new_categories:
                    self.new_categories[column.destination].update(
                        value for value in set(cleaned) if value is not None)
            else:
                field_names.append(column.destination)
                field_values.append(cleaned)
        problems.sort(key=lambda item: (item[0], item[1]))
        bad_positions = {position for position, _order, _error in problems}
        count = len(rows)
        if feature_values:
            # Bad rows have None fragments; they yield no record, so their text is never used.
            fragments = [list(map(column.fragments.get, columns[column.index])) for column in self.json_columns]
            if bad_positions:
                for column_fragments in fragments:
                    for position in bad_positions:
                        column_fragments[position] = ""
            texts = ["{" + text + "}" for text in map(", ".join, zip(*fragments, strict=True))]
            inexact = set()
            for column in self.json_columns:
                if column.inexact and not column.inexact.isdisjoint(columns[column.index]):
                    inexact.update(p for p, raw in enumerate(columns[column.index]) if raw in column.inexact)
        else:
            texts, inexact = ["{}"] * count, set()
        if field_values and any(_MISSING in set(cleaned) for cleaned in field_values):
            fields = [{name: value for name, value in zip(field_names, values_, strict=True) if value is not _MISSING}
                      for values_ in zip(*field_values, strict=True)]
        elif field_values:
            fields = list(map(dict, map(zip, itertools.repeat(field_names), zip(*field_values, strict=True))))
        else:
            fields = [{} for _ in rows]
        keys = self.feature_keys
        records = [CleanRecord(numbers[p], ids[p], fields[p], keys=keys, columns=feature_values, position=p,
                               features_json=texts[p], exact_json=p not in inexact)
                   for p in range(count) if p not in bad_positions]
        return ChunkResult(records, ids, {numbers[p] for p in bad_positions}, [error for *_, error in problems])

    def seen_range(self, key: str) -> tuple[float | None, float | None]:
        """The smallest and largest number the file holds for the numeric feature ``key``."""
        numbers = [value for column in self.columns if column.is_feature and column.destination == key
                   for value in column.good.values() if isinstance(value, float)]
        return (min(numbers), max(numbers)) if numbers else (None, None)

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
