"""Writes to students and their schema. Views, serializers and tasks call these; nothing else writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from institutions.access import access_member_user
from institutions.models import Institution, Job
from institutions.scoping import institution_scope

from .feature_translations import (
    TRANSLATION_FIELDS,
    clean_translation_texts,
    translation_field,
    translation_value,
    translations_with,
)
from .feature_values import FeatureValueError, clean_feature_value, clean_feature_values
from .models import ChangeSource, FeatureDefinition, FeatureDefinitionChange, FeatureKind, Student, StudentChange
from .stages import feature_stage_for_input, feature_stage_list, feature_stage_of

STUDENT_FIELDS = ("name", "email", "program", "cohort", "status", "outcome", "outcome_date")


def _diff(student: Student, data: Mapping[str, Any], features: Mapping[str, Any] | None) -> dict[str, list]:
    changes: dict[str, list] = {}
    for field in STUDENT_FIELDS:
        if field in data and getattr(student, field) != data[field]:
            old, new = getattr(student, field), data[field]
            changes[field] = [None if old is None else str(old), None if new is None else str(new)]
    if "advisor" in data:
        old_id = student.advisor_id
        new_id = data["advisor"].pk if data["advisor"] is not None else None
        if old_id != new_id:
            changes["advisor"] = [old_id, new_id]
    if features is not None:
        for key, value in features.items():
            if student.features.get(key) != value:
                changes[f"features.{key}"] = [student.features.get(key), value]
    return changes


@transaction.atomic
def student_save(
    *,
    institution: Institution,
    student: Student | None,
    data: Mapping[str, Any],
    source: str = ChangeSource.WEB,
    actor: AbstractBaseUser | None = None,
    job: Job | None = None,
) -> tuple[Student, bool]:
    """Create or update one student with validated features; record what changed.

    ``data`` may hold the student fields, ``external_id`` (create only), ``advisor`` (a user or a
    user id, which must be a member of the institution) and ``features`` (merged into the
    current values, each validated against the schema). Returns ``(student, changed)``.
    """
    data = dict(data)
    features = data.pop("features", None)
    if features is not None:
        definitions = FeatureDefinition.objects.for_institution(institution)
        features = clean_feature_values(definitions, features)
    if "advisor" in data and not (data["advisor"] is None or hasattr(data["advisor"], "pk")):
        data["advisor"] = access_member_user(institution=institution, user_id=data["advisor"])
    elif data.get("advisor") is not None:
        data["advisor"] = access_member_user(institution=institution, user_id=data["advisor"].pk)

    created = student is None
    if created:
        student = Student(institution=institution, external_id=data.pop("external_id"))
        changes = {"external_id": [None, student.external_id]}
        changes.update(_diff(student, data, features))
    else:
        if student.institution_id != institution.pk:
            raise ValueError("student belongs to another institution")
        data.pop("external_id", None)
        changes = _diff(student, data, features)
        if not changes:
            return student, False
    for field in (*STUDENT_FIELDS, "advisor"):
        if field in data:
            setattr(student, field, data[field])
    if features is not None:
        student.features = {**student.features, **features}
    student.save()
    StudentChange.objects.for_institution(institution).create(
        student=student, source=source, actor=actor, job=job, created=created, changes=changes
    )
    return student, True


def student_delete(*, institution: Institution, student: Student) -> None:
    if student.institution_id != institution.pk:
        raise ValueError("student belongs to another institution")
    student.delete()


def feature_definition_create(
    *, institution: Institution, data: Mapping[str, Any], actor: AbstractBaseUser | None = None,
    source: str = ChangeSource.API,
) -> FeatureDefinition:
    """A new feature of the schema (``retired`` may be given, and ``known_from`` as a stage key:
    FeatureDefinitionInvalid when the institution has no such stage); its creation is recorded."""
    data = dict(data)
    retired = bool(data.pop("retired", False))
    stage_key = data.pop("known_from", None)
    changes: dict[str, list] = {}
    if stage_key:
        stage = feature_stage_for_input(institution=institution, key=stage_key)
        if stage is None:
            raise FeatureDefinitionInvalid({"known_from": ["this institution has no stage with this key"]})
        data["known_from"] = stage
        changes["known_from"] = [None, stage.key]
    texts, errors = clean_translation_texts({name: data.pop(name) for name in list(data) if translation_field(name)})
    if errors:
        raise FeatureDefinitionInvalid(errors)
    definition = FeatureDefinition(institution=institution, translations=translations_with({}, texts), **data)
    if retired:
        definition.retired_at = timezone.now()
    with transaction.atomic(), institution_scope(institution):  # uniqueness validation reads through the scope
        definition.full_clean(exclude=["institution"])
        definition.save()
        FeatureDefinitionChange.objects.for_institution(institution).create(
            feature=definition, actor=actor, source=source, changes={"created": [None, definition.key], **changes},
        )
    return definition


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def feature_definitions_created_record(
    *, institution: Institution, definitions: list[FeatureDefinition], actor: AbstractBaseUser | None = None,
    source: str = ChangeSource.IMPORT,
) -> None:
    """Record in the schema history the features an import created, with the range it saw."""
    rows = []
    for definition in definitions:
        changes: dict[str, list] = {"created": [None, definition.key]}
        if definition.seen_min_value is not None:
            changes["seen_in_file"] = [
                None, f"{_number_text(definition.seen_min_value)} to {_number_text(definition.seen_max_value)}"]
        rows.append(FeatureDefinitionChange(institution=institution, feature=definition, actor=actor, source=source,
                                            changes=changes))
    FeatureDefinitionChange.objects.for_institution(institution).bulk_create(rows)


# What an administrator may change on a feature (its key and kind are what stored values mean).
FEATURE_EDITABLE_FIELDS = (
    "label", "description", "unit", "min_value", "max_value", "categories", "protected", "actionable", "retired",
    *TRANSLATION_FIELDS,  # label_es, description_es, ... (students/feature_translations.py)
    "known_from",
)
# Changes the live model does not see until it is retrained on the new schema.
FEATURE_RETRAIN_FIELDS = ("protected", "actionable", "retired", "known_from")
_VALUE_RULE_FIELDS = ("min_value", "max_value", "categories")


class FeatureDefinitionInvalid(ValueError):
    """An edit that would leave the definition inconsistent; ``errors`` maps field -> reasons."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{key}: {' '.join(reasons)}" for key, reasons in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class FeatureEditPreview:
    """What saving an edit would do, shown before it is saved."""

    changes: dict[str, list]  # field -> [old, new]
    stored_values_outside: int  # students whose stored value the edited rules refuse (kept, flagged)
    applies_at_retrain: list[str] = dataclass_field(default_factory=list)

    @property
    def changes_value_rules(self) -> bool:
        return any(name in self.changes for name in _VALUE_RULE_FIELDS)


def _feature_field_value(definition: FeatureDefinition, name: str):
    if name == "retired":
        return definition.is_retired
    if name == "known_from":  # by the stage's key (the earliest stage's when none is set)
        return feature_stage_of(definition, feature_stage_list(institution=definition.institution)).key
    if translation_field(name):
        return translation_value(definition.translations, name)
    return getattr(definition, name)


def _clean_feature_edit(definition: FeatureDefinition, data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(FEATURE_EDITABLE_FIELDS))
    if unknown:
        raise FeatureDefinitionInvalid({name: ["cannot be changed here"] for name in unknown})
    cleaned = dict(data)
    errors: dict[str, list[str]] = {}
    if "label" in cleaned:
        cleaned["label"] = str(cleaned["label"] or "").strip()
        if not cleaned["label"]:
            errors["label"] = ["must not be blank"]
    for name in ("description", "unit"):
        if name in cleaned:
            cleaned[name] = str(cleaned[name] or "").strip()
    texts, text_errors = clean_translation_texts({name: cleaned[name] for name in cleaned if translation_field(name)})
    cleaned.update(texts)
    errors.update(text_errors)
    if "categories" in cleaned:
        categories = cleaned["categories"] or []
        if not isinstance(categories, list) or not all(isinstance(c, dict) and "value" in c for c in categories):
            errors["categories"] = ['must be a list of {"value": ..., "label": ...} objects']
        else:
            categories = [{"value": str(c["value"]).strip(), "label": str(c.get("label") or c["value"]).strip()}
                          for c in categories]
            values = [c["value"] for c in categories]
            if any(not value for value in values):
                errors["categories"] = ["a category's value must not be blank"]
            elif len(set(values)) != len(values):
                errors["categories"] = ["each category value may appear only once"]
            cleaned["categories"] = categories
    low = cleaned.get("min_value", definition.min_value)
    high = cleaned.get("max_value", definition.max_value)
    if definition.kind != FeatureKind.NUMERIC and (
        cleaned.get("min_value") is not None or cleaned.get("max_value") is not None
    ):
        errors["min_value"] = ["only numeric features have a valid range"]
    elif low is not None and high is not None and low > high:
        errors["min_value"] = ["must not be greater than the maximum"]
    if definition.kind != FeatureKind.CATEGORICAL and cleaned.get("categories"):
        errors["categories"] = ["only categorical features have categories"]
    if "known_from" in cleaned:
        stage = feature_stage_for_input(institution=definition.institution, key=cleaned["known_from"])
        if stage is None:
            errors["known_from"] = ["this institution has no stage with this key"]
        else:
            cleaned["known_from"] = stage.key
    if errors:
        raise FeatureDefinitionInvalid(errors)
    return cleaned


def _edited_copy(definition: FeatureDefinition, data: Mapping[str, Any]) -> FeatureDefinition:
    fields = FeatureDefinition._meta.concrete_fields
    edited = FeatureDefinition(**{f.attname: getattr(definition, f.attname) for f in fields})
    for name, value in data.items():
        if name not in ("retired", "known_from") and not translation_field(name):
            setattr(edited, name, value)
    return edited


def feature_stored_values_outside(*, institution: Institution, definition: FeatureDefinition) -> int:
    """How many students hold a value of ``definition.key`` that ``definition``'s rules refuse."""
    values = (Student.objects.for_institution(institution).filter(features__has_key=definition.key)
              .annotate(value=KeyTransform(definition.key, "features")).values_list("value", flat=True))
    outside = 0
    verdicts: dict[object, bool] = {}  # few distinct values: judge each once
    for value in values.iterator(chunk_size=5000):
        marker = (type(value), value) if not isinstance(value, dict | list) else None
        if marker is not None and marker in verdicts:
            outside += verdicts[marker]
            continue
        try:
            clean_feature_value(definition, value)
            bad = False
        except FeatureValueError:
            bad = True
        if marker is not None:
            verdicts[marker] = bad
        outside += bad
    return outside


def feature_definition_edit_preview(
    *, institution: Institution, definition: FeatureDefinition, data: Mapping[str, Any]
) -> FeatureEditPreview:
    """Validate an edit and say what it would change, without saving anything.

    Raises :class:`FeatureDefinitionInvalid`. ``stored_values_outside`` counts, when the edit
    changes the range or categories, the stored values the new rules refuse: they are kept (and
    flagged on the student's record), and imports refuse such values from then on.
    """
    if definition.institution_id != institution.pk:
        raise ValueError("feature belongs to another institution")
    cleaned = _clean_feature_edit(definition, data)
    changes = {name: [_feature_field_value(definition, name), value] for name, value in cleaned.items()
               if _feature_field_value(definition, name) != value}
    outside = 0
    if any(name in changes for name in _VALUE_RULE_FIELDS):
        outside = feature_stored_values_outside(institution=institution, definition=_edited_copy(definition, cleaned))
    return FeatureEditPreview(changes=changes, stored_values_outside=outside,
                              applies_at_retrain=[name for name in FEATURE_RETRAIN_FIELDS if name in changes])


@transaction.atomic
def feature_definition_edit(
    *, institution: Institution, definition: FeatureDefinition, data: Mapping[str, Any],
    actor: AbstractBaseUser | None = None, source: str = ChangeSource.WEB,
) -> tuple[FeatureEditPreview, FeatureDefinitionChange | None]:
    """Apply an administrator's edit (label, description, unit, range, categories, flags, retired)
    and record who changed what (old -> new). Returns the preview of what it did and the change
    row (None when nothing changed). Setting a range confirms an import's "seen in file" range."""
    preview = feature_definition_edit_preview(institution=institution, definition=definition, data=data)
    if not preview.changes:
        return preview, None
    for name, (_old, new) in preview.changes.items():
        if name == "retired":
            definition.retired_at = timezone.now() if new else None
        elif name == "known_from":
            definition.known_from = feature_stage_for_input(institution=institution, key=new)
        elif translation_field(name):
            definition.translations = translations_with(definition.translations, {name: new})
        else:
            setattr(definition, name, new)
    if definition.min_value is not None or definition.max_value is not None:
        definition.seen_min_value = definition.seen_max_value = None
    definition.save()
    change = FeatureDefinitionChange.objects.for_institution(institution).create(
        feature=definition, actor=actor, source=source, changes=preview.changes,
    )
    return preview, change


def feature_range_confirm(
    *, institution: Institution, definition: FeatureDefinition, actor: AbstractBaseUser | None = None,
    source: str = ChangeSource.WEB,
) -> tuple[FeatureEditPreview, FeatureDefinitionChange | None]:
    """Make the range an import saw in the file the feature's valid range."""
    if not definition.range_unconfirmed:
        raise FeatureDefinitionInvalid({"min_value": ["this feature has no range seen in a file to confirm"]})
    return feature_definition_edit(
        institution=institution, definition=definition, actor=actor, source=source,
        data={"min_value": definition.seen_min_value, "max_value": definition.seen_max_value},
    )


def students_unassign_advisor(*, institution: Institution, user_id: int, actor=None) -> int:
    """Clear the advisor on every student of ``user_id`` in the institution; record each change."""
    students = list(Student.objects.for_institution(institution).filter(advisor_id=user_id))
    for student in students:
        student_save(institution=institution, student=student, data={"advisor": None}, source=ChangeSource.WEB,
                     actor=actor)
    return len(students)
