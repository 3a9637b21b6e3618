"""Which column of a file goes where, and the suggestion made from the headers.

A mapping is plain JSON (the page form, the API and ``--mapping mapping.json`` all speak it)::

    {"columns": {"<header>": {"target": "external_id" | "name" | "email" | "program" | "cohort"
                                        | "outcome" | "status" | "outcome_date"
                                        | "feature" | "new_feature" | "ignore",
                              "feature": "<key>",            # feature / new_feature
                              "label": "...", "kind": "numeric|categorical|boolean",
                              "min_value": 0, "max_value": 20, "categories": [{"value", "label"}],
                              "protected": false, "actionable": false, "unit": ""}},
     "outcome_values": {"Dropout": "dropped_out", "Graduate": "graduated", "Enrolled": "enrolled"},
     "id_columns": ["code_module", "code_presentation", "id_student"],   # compose the id, joined by "-"
     "id_row_prefix": "UCI",                                              # or number the rows: UCI-00001
     "delimiter": ";",                                                    # optional; sniffed otherwise
     "decimal_comma": false,                                              # numbers written 3,5 (default 3.5)
     "clear_blank_columns": ["email"],  # a column blank in every row clears stored values only if listed
     "program_from": "Course"}  # a categorical feature column whose label is also the student's program
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..feature_values import parse_plain_number
from ..models import FeatureDefinition, FeatureKind, Outcome
from ..uci_schema import UCI_COLUMNS, UCI_OUTCOMES, UCI_TARGET_HEADER
from .errors import ImportFileError

STUDENT_TARGETS = ("external_id", "name", "email", "program", "cohort", "outcome", "status", "outcome_date")
FEATURE_TARGETS = ("feature", "new_feature")
TARGETS = (*STUDENT_TARGETS, *FEATURE_TARGETS, "ignore")
TARGET_LABELS = {
    "external_id": _("External id (the student's id)"), "name": _("Name"), "email": _("Email"),
    "program": _("Program"), "cohort": _("Cohort / entry term"), "outcome": _("Outcome"),
    "status": _("Enrolment status"), "outcome_date": _("Outcome date"), "feature": _("Existing feature"),
    "new_feature": _("New feature"), "ignore": _("Ignore this column"),
}
ID_JOIN = "-"

# Outcome words understood without being mapped (compared case-insensitively).
KNOWN_OUTCOME_WORDS: dict[str, str] = {
    "dropout": Outcome.DROPPED_OUT, "dropped out": Outcome.DROPPED_OUT, "dropped_out": Outcome.DROPPED_OUT,
    "withdrawn": Outcome.DROPPED_OUT, "withdrew": Outcome.DROPPED_OUT,
    "graduate": Outcome.GRADUATED, "graduated": Outcome.GRADUATED, "completed": Outcome.GRADUATED,
    "pass": Outcome.GRADUATED, "distinction": Outcome.GRADUATED,
    "enrolled": Outcome.ENROLLED, "still enrolled": Outcome.ENROLLED, "continuing": Outcome.ENROLLED,
    "transferred": Outcome.TRANSFERRED, "transfer": Outcome.TRANSFERRED,
    "fail": Outcome.OTHER, "other": Outcome.OTHER,
}

_HEADER_HINTS: dict[str, set[str]] = {
    "external_id": {"external_id", "student_id", "id_student", "studentid", "student_number", "student_no", "id",
                    "sis_id", "matricula", "student"},
    "name": {"name", "full_name", "student_name", "fullname"},
    "email": {"email", "e_mail", "email_address", "mail"},
    "program": {"program", "programme", "program_name", "programme_name", "degree", "major", "code_module", "module",
                "course", "course_name", "curso", "carrera"},
    "cohort": {"cohort", "entry_term", "intake", "code_presentation", "entry_year", "start_term", "term"},
    "outcome": {"outcome", "target", "final_result", "result", "final_status", "final_outcome", "student_outcome",
                "outcome_status", "completion_status", "exit_status", "situacao", "resultado"},
    "status": {"status", "enrolment_status", "enrollment_status"},
    "outcome_date": {"outcome_date", "exit_date", "date_left"},
}
# Headers that hold the outcome when their values are outcome words, else the enrolment status.
_STATUS_OR_OUTCOME = {"status", "student_status", "academic_status", "enrolment_status", "enrollment_status"}
UCI_COURSE_HEADER = "Course"
_PROTECTED_HINTS = {"gender", "sex", "age", "age_band", "nationality", "disability", "ethnicity", "race",
                    "religion", "marital_status", "imd_band"}
_BOOLEAN_WORDS = {"yes", "no", "y", "n", "true", "false", "t", "f"}
_UCI_BY_HEADER = {column.header: column for column in UCI_COLUMNS}
OULAD_ID_COLUMNS = ["code_module", "code_presentation", "id_student"]


def _looks_like_outcomes(values: Iterable[str]) -> bool:
    """Whether a sample's values are all outcome words (and not all enrolment statuses)."""
    words = {value.strip().lower() for value in values if value and value.strip()}
    # The outcomes' English labels ("still enrolled", ...) are known words: a file's words never
    # depend on the language of the page that reads it.
    known = {*KNOWN_OUTCOME_WORDS, *Outcome.values}
    statuses = {"active", "inactive", "on leave", "on_leave"}
    return bool(words) and words <= known and not words <= statuses


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def feature_key_for(header: str) -> str:
    return slugify(normalise_header(header)).replace("-", "_")[:80] or "column"


@dataclass
class ColumnSpec:
    target: str
    feature: str = ""
    label: str = ""
    kind: str = ""
    min_value: float | None = None
    max_value: float | None = None
    categories: list[dict] = field(default_factory=list)
    protected: bool = False
    actionable: bool = False
    unit: str = ""

    def as_dict(self) -> dict:
        if self.target == "new_feature":
            return {"target": self.target, "feature": self.feature, "label": self.label, "kind": self.kind,
                    "min_value": self.min_value, "max_value": self.max_value, "categories": self.categories,
                    "protected": self.protected, "actionable": self.actionable, "unit": self.unit}
        if self.target == "feature":
            return {"target": self.target, "feature": self.feature}
        return {"target": self.target}


@dataclass
class ImportMappingSpec:
    columns: dict[str, ColumnSpec]
    outcome_values: dict[str, str] = field(default_factory=dict)
    id_columns: list[str] = field(default_factory=list)
    id_row_prefix: str = ""
    delimiter: str = ""
    decimal_comma: bool = False  # numbers are written 3,5: only then is a comma read as the decimal mark
    # Columns blank in every row that should clear the stored values (otherwise left alone).
    clear_blank_columns: list[str] = field(default_factory=list)
    # A column mapped to a categorical feature (e.g. UCI's course code) that also fills the student's
    # program, with the category's label, so that the lists and filters show it.
    program_from: str = ""

    def as_dict(self) -> dict:
        return {
            "columns": {header: spec.as_dict() for header, spec in self.columns.items()},
            "outcome_values": dict(self.outcome_values), "id_columns": list(self.id_columns),
            "id_row_prefix": self.id_row_prefix, "delimiter": self.delimiter, "decimal_comma": self.decimal_comma,
            "clear_blank_columns": list(self.clear_blank_columns), "program_from": self.program_from,
        }

    def without_columns(self, headers) -> ImportMappingSpec:
        """This mapping with ``headers`` ignored."""
        columns = {name: ColumnSpec(target="ignore") if name in headers else column
                   for name, column in self.columns.items()}
        return ImportMappingSpec(columns=columns, outcome_values=dict(self.outcome_values),
                                 id_columns=list(self.id_columns), id_row_prefix=self.id_row_prefix,
                                 delimiter=self.delimiter, decimal_comma=self.decimal_comma,
                                 clear_blank_columns=list(self.clear_blank_columns),
                                 program_from="" if self.program_from in headers else self.program_from)

    def columns_for(self, target: str) -> list[str]:
        return [header for header, spec in self.columns.items() if spec.target == target]


def _invalid(message: str) -> ImportFileError:
    return ImportFileError("invalid_mapping", message)


def mapping_from_dict(data: Mapping) -> ImportMappingSpec:
    """Parse mapping JSON, rejecting anything malformed with a message naming the problem."""
    if not isinstance(data, Mapping):
        raise _invalid("The mapping must be a JSON object with a \"columns\" object.")
    raw_columns = data.get("columns", {})
    if not isinstance(raw_columns, Mapping):
        raise _invalid('"columns" must map each header to {"target": ...}.')
    columns: dict[str, ColumnSpec] = {}
    for header, raw in raw_columns.items():
        if isinstance(raw, str):
            raw = {"target": raw}
        if not isinstance(raw, Mapping) or raw.get("target") not in TARGETS:
            raise _invalid(f"Column {header!r}: target must be one of {', '.join(TARGETS)}.")
        spec = ColumnSpec(target=raw["target"])
        if spec.target in FEATURE_TARGETS:
            spec.feature = str(raw.get("feature") or (feature_key_for(header) if spec.target == "new_feature" else ""))
            if not spec.feature:
                raise _invalid(f"Column {header!r}: name the existing feature it fills (\"feature\": key).")
        if spec.target == "new_feature":
            spec.label = str(raw.get("label") or header.strip())[:200]
            spec.kind = str(raw.get("kind") or FeatureKind.CATEGORICAL)
            if spec.kind not in FeatureKind.values:
                raise _invalid(f"Column {header!r}: kind must be one of {', '.join(FeatureKind.values)}.")
            if not re.fullmatch(r"[-a-zA-Z0-9_]+", spec.feature):
                raise _invalid(f"Column {header!r}: feature key {spec.feature!r} may only hold letters, digits, "
                               "_ and -.")
            for bound in ("min_value", "max_value"):
                value = raw.get(bound)
                if value is not None:
                    try:
                        setattr(spec, bound, float(value))
                    except (TypeError, ValueError):
                        raise _invalid(f"Column {header!r}: {bound} must be a number.") from None
            categories = raw.get("categories") or []
            if not isinstance(categories, list) or not all(
                isinstance(item, Mapping) and "value" in item for item in categories
            ):
                raise _invalid(f'Column {header!r}: categories must be a list of {{"value", "label"}} objects.')
            spec.categories = [{"value": str(item["value"]), "label": str(item.get("label") or item["value"])}
                               for item in categories]
            spec.protected = bool(raw.get("protected", False))
            spec.actionable = bool(raw.get("actionable", False))
            spec.unit = str(raw.get("unit") or "")[:40]
        columns[str(header)] = spec
    outcome_values = data.get("outcome_values") or {}
    if not isinstance(outcome_values, Mapping) or any(v not in Outcome.values for v in outcome_values.values()):
        raise _invalid(f"outcome_values must map file values to one of {', '.join(Outcome.values)}.")
    id_columns = data.get("id_columns") or []
    if not isinstance(id_columns, list) or not all(isinstance(name, str) for name in id_columns):
        raise _invalid("id_columns must be a list of header names.")
    delimiter = data.get("delimiter") or ""
    if delimiter not in ("", ",", ";", "\t", "|"):
        raise _invalid("delimiter must be one of , ; | or a tab.")
    decimal_comma = data.get("decimal_comma", False)
    if not isinstance(decimal_comma, bool):
        raise _invalid("decimal_comma must be true or false.")
    clear_blank_columns = data.get("clear_blank_columns") or []
    if not isinstance(clear_blank_columns, list) or not all(isinstance(name, str) for name in clear_blank_columns):
        raise _invalid("clear_blank_columns must be a list of header names.")
    return ImportMappingSpec(
        columns=columns, outcome_values={str(k): str(v) for k, v in outcome_values.items()},
        id_columns=list(id_columns), id_row_prefix=str(data.get("id_row_prefix") or "")[:40],
        delimiter=delimiter, decimal_comma=decimal_comma, clear_blank_columns=list(clear_blank_columns),
        program_from=str(data.get("program_from") or ""),
    )


def check_mapping(spec: ImportMappingSpec, header: Sequence[str], definitions: Mapping[str, FeatureDefinition]) -> None:
    """Refuse a mapping that cannot work with this header and schema (before reading any row); the
    messages are in the language of the page (or request) that checks it."""
    present = set(header)
    unknown = [name for name in (*spec.columns, *spec.id_columns) if name not in present]
    if unknown:
        raise _invalid(gettext("The mapping names columns the file does not have: %(columns)s.")
                       % {"columns": ", ".join(sorted(set(unknown)))})
    id_sources = len(spec.columns_for("external_id")) + bool(spec.id_columns) + bool(spec.id_row_prefix)
    if id_sources == 0:
        raise ImportFileError(
            "missing_id_column",
            gettext("No column is mapped to the external id, so students cannot be matched. Map the column holding "
                    "the student's id (or compose it from several columns, or number the rows for a file without "
                    "ids)."),
        )
    if id_sources > 1 or len(spec.columns_for("external_id")) > 1:
        raise _invalid(gettext("Choose one way to identify students: one id column, several id columns, or row "
                               "numbers."))
    if spec.program_from:
        source = spec.columns.get(spec.program_from)
        if source is None or source.target not in FEATURE_TARGETS:
            raise _invalid(gettext("program_from names %(column)s, which is not a column mapped to a feature.")
                           % {"column": repr(spec.program_from)})
        if spec.columns_for("program"):
            raise _invalid(gettext("Column %(column)s is mapped to the program, and program_from names %(other)s "
                                   "too: choose one.")
                           % {"column": repr(spec.columns_for("program")[0]), "other": repr(spec.program_from)})
    for target in STUDENT_TARGETS:
        if len(spec.columns_for(target)) > 1:
            raise _invalid(gettext("Only one column may be mapped to %(target)s: %(columns)s.")
                           % {"target": str(TARGET_LABELS[target]).lower(),
                              "columns": ", ".join(spec.columns_for(target))})
    seen_keys: dict[str, str] = {}
    for header_name, column in spec.columns.items():
        if column.target == "feature" and column.feature not in definitions:
            raise _invalid(gettext("Column %(column)s is mapped to feature %(feature)s, which this institution does "
                                   "not have. Map it to a new feature instead.")
                           % {"column": repr(header_name), "feature": repr(column.feature)})
        if column.target == "new_feature" and column.feature in definitions:
            if definitions[column.feature].kind == column.kind:
                # Created by an earlier import with this same mapping: fill the existing feature.
                spec.columns[header_name] = ColumnSpec(target="feature", feature=column.feature)
                continue
            raise _invalid(gettext("Column %(column)s would create feature %(feature)s, which exists already as a "
                                   "%(kind)s feature. Map it to the existing feature or choose another key.")
                           % {"column": repr(header_name), "feature": repr(column.feature),
                              "kind": str(FeatureKind(definitions[column.feature].kind).label).lower()})
        if column.target in FEATURE_TARGETS:
            if column.feature in seen_keys:
                raise _invalid(gettext("Columns %(first)s and %(second)s both fill feature %(feature)s.")
                               % {"first": repr(seen_keys[column.feature]), "second": repr(header_name),
                                  "feature": repr(column.feature)})
            seen_keys[column.feature] = header_name
    new_features = [name for name, column in spec.columns.items() if column.target == "new_feature"]
    if len(new_features) > settings.IMPORT_MAX_NEW_FEATURES:
        raise ImportFileError(
            "too_many_new_features",
            gettext("This mapping would create %(count)s new features; one import creates at most %(limit)s "
                    "(IMPORT_MAX_NEW_FEATURES), because features are permanent. Map the columns you do not need to "
                    "\"ignore\" (or to existing features) and import the others in a later file.")
            % {"count": len(new_features), "limit": settings.IMPORT_MAX_NEW_FEATURES},
        )


def _parses_as_number(value: str, decimal_comma: bool = False) -> bool:
    number = parse_plain_number(value, decimal_comma=decimal_comma)
    return number is not None and math.isfinite(number)


def infer_kind(values: Iterable[str]) -> str:
    present = [value.strip() for value in values if value and value.strip()]
    if not present:
        return FeatureKind.CATEGORICAL
    if all(_parses_as_number(value) for value in present) or all(_parses_as_number(value, True) for value in present):
        return FeatureKind.NUMERIC
    if {value.lower() for value in present} <= _BOOLEAN_WORDS:
        return FeatureKind.BOOLEAN
    return FeatureKind.CATEGORICAL


def _uci_spec(column, definitions: Mapping[str, FeatureDefinition]) -> ColumnSpec:
    if column.key in definitions:
        return ColumnSpec(target="feature", feature=column.key)
    return ColumnSpec(
        target="new_feature", feature=column.key, label=column.label, kind=column.kind,
        min_value=column.min_value, max_value=column.max_value,
        categories=[{"value": code, "label": label} for code, label in column.code_labels.items()],
        protected=column.protected, actionable=column.actionable, unit=column.unit,
    )


def suggest_mapping(
    *, header: Sequence[str], sample_rows: Sequence[Sequence[str]], definitions: Mapping[str, FeatureDefinition],
    remembered: Mapping | None = None, has_students: bool = False,
) -> ImportMappingSpec:
    """Propose a mapping: what this institution chose before, else UCI/OULAD knowledge, else names.

    Numbering the rows (for a file without ids) is suggested only while the institution has no
    students (``has_students``): afterwards row numbers would name other students."""
    remembered = remembered or {}
    remembered_columns = remembered.get("columns", {}) if isinstance(remembered, Mapping) else {}
    by_label = {normalise_header(d.label): key for key, d in definitions.items()}
    columns: dict[str, ColumnSpec] = {}
    used_student_targets: set[str] = set()
    is_uci = sum(name in _UCI_BY_HEADER for name in header) >= len(_UCI_BY_HEADER) // 2
    normalised = {name: normalise_header(name) for name in header}
    is_oulad = set(OULAD_ID_COLUMNS) <= set(normalised.values())

    for index, name in enumerate(header):
        norm = normalised[name]
        spec: ColumnSpec | None = None
        if name in remembered_columns:
            try:
                spec = mapping_from_dict({"columns": {name: remembered_columns[name]}}).columns[name]
            except ImportFileError:
                spec = None
            if spec is not None and spec.target == "new_feature" and spec.feature in definitions:
                spec = ColumnSpec(target="feature", feature=spec.feature)
            if spec is not None and spec.target == "feature" and spec.feature not in definitions:
                spec = None
        if spec is None and name in _UCI_BY_HEADER:
            spec = _uci_spec(_UCI_BY_HEADER[name], definitions)
        if spec is None and name == UCI_TARGET_HEADER and is_uci:
            spec = ColumnSpec(target="outcome")
        if spec is None and is_oulad and norm == "id_student":
            spec = ColumnSpec(target="ignore")  # part of the composed id (see id_columns)
        if spec is None and norm in _STATUS_OR_OUTCOME and "outcome" not in used_student_targets and \
                _looks_like_outcomes(row[index] for row in sample_rows if index < len(row)):
            spec = ColumnSpec(target="outcome")  # "status" holding Graduate/Dropout/Enrolled is the outcome
        if spec is None:
            for target, hints in _HEADER_HINTS.items():
                if norm in hints and target not in used_student_targets:
                    if target == "external_id" and is_oulad:
                        continue
                    spec = ColumnSpec(target=target)
                    break
        if spec is None and (norm in definitions or norm in by_label):
            spec = ColumnSpec(target="feature", feature=norm if norm in definitions else by_label[norm])
        if spec is None:
            values = [row[index] for row in sample_rows if index < len(row)]
            key = feature_key_for(name)
            spec = ColumnSpec(target="new_feature", feature=key, label=name.strip()[:200], kind=str(infer_kind(values)),
                              protected=key in _PROTECTED_HINTS)
        if spec.target in STUDENT_TARGETS:
            if spec.target in used_student_targets:
                spec = ColumnSpec(target="ignore")
            used_student_targets.add(spec.target)
        columns[name] = spec

    outcome_values = {str(k): str(v) for k, v in (remembered.get("outcome_values") or {}).items()}
    if is_uci:
        outcome_values = {**UCI_OUTCOMES, **outcome_values}
    options = remembered.get("options", {}) if isinstance(remembered, Mapping) else {}
    id_columns: list[str] = []
    id_row_prefix = ""
    if "external_id" not in used_student_targets:
        remembered_ids = [c for c in options.get("id_columns", []) if c in header]
        if remembered_ids and len(remembered_ids) == len(options.get("id_columns", [])):
            id_columns = remembered_ids
        elif is_oulad:
            id_columns = [next(n for n in header if normalised[n] == key) for key in OULAD_ID_COLUMNS]
        elif (options.get("id_row_prefix") or is_uci) and not has_students:
            id_row_prefix = options.get("id_row_prefix") or "UCI"
    program_from = str(options.get("program_from") or "")
    if program_from not in columns or columns[program_from].target not in FEATURE_TARGETS:
        program_from = ""
    if not program_from and is_uci and "program" not in used_student_targets:
        program_from = next((name for name in header if name == UCI_COURSE_HEADER and name in columns), "")
    decimal_comma = options.get("decimal_comma")
    if not isinstance(decimal_comma, bool):
        decimal_comma = _writes_decimal_commas(header, sample_rows, columns)
    return ImportMappingSpec(columns=columns, outcome_values=outcome_values, id_columns=id_columns,
                             id_row_prefix=id_row_prefix, delimiter="", decimal_comma=decimal_comma,
                             program_from=program_from)


def _writes_decimal_commas(header: Sequence[str], sample_rows: Sequence[Sequence[str]],
                           columns: Mapping[str, ColumnSpec]) -> bool:
    """Whether the sample's feature columns write decimals with a comma (``3,5``) and never with
    a point: the suggestion the administrator then sees, and can untick, on the mapping form."""
    comma = point = False
    for index, name in enumerate(header):
        if columns[name].target not in FEATURE_TARGETS:
            continue
        for row in sample_rows:
            cell = row[index].strip() if index < len(row) else ""
            if "," in cell and parse_plain_number(cell, decimal_comma=True) is not None:
                comma = True
            elif "." in cell and parse_plain_number(cell) is not None:
                point = True
    return comma and not point
