"""Writes to students and their schema. Views, serializers and tasks call these; nothing else writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from institutions.access import access_member_user
from institutions.models import Institution, Job
from institutions.scoping import institution_scope

from .feature_values import clean_feature_values
from .models import ChangeSource, FeatureDefinition, Student, StudentChange

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


def feature_definition_save(
    *, institution: Institution, definition: FeatureDefinition | None, data: Mapping[str, Any]
) -> FeatureDefinition:
    if definition is None:
        definition = FeatureDefinition(institution=institution)
    for field, value in data.items():
        setattr(definition, field, value)
    with institution_scope(institution):  # uniqueness validation reads through the tenant manager
        definition.full_clean(exclude=["institution"])
        definition.save()
    return definition


def students_unassign_advisor(*, institution: Institution, user_id: int, actor=None) -> int:
    """Clear the advisor on every student of ``user_id`` in the institution; record each change."""
    students = list(Student.objects.for_institution(institution).filter(advisor_id=user_id))
    for student in students:
        student_save(institution=institution, student=student, data={"advisor": None}, source=ChangeSource.WEB,
                     actor=actor)
    return len(students)
