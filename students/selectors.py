"""Reads of students and the feature schema, always for one institution."""

from __future__ import annotations

from django.db.models import Case, Count, Q, QuerySet, When
from django.utils.translation import get_language

from institutions.access import object_for_input_id
from institutions.models import Institution

from .models import EnrolmentStatus, FeatureDefinition, FeatureDefinitionChange, Outcome, Student, StudentChange


def feature_definition_list(*, institution: Institution) -> QuerySet[FeatureDefinition]:
    return FeatureDefinition.objects.for_institution(institution).order_by("position", "key")


def feature_labels_shown(*, institution: Institution) -> dict[str, str]:
    """Feature key -> the label a reader in the active language sees: the institution's label in
    that language, else its default label."""
    language = get_language()
    return {definition.key: definition.label_in(language)
            for definition in feature_definition_list(institution=institution).only("key", "label", "translations")}


def feature_definition_changes(
    *, institution: Institution, feature: FeatureDefinition | None = None, limit: int = 20
) -> list[FeatureDefinitionChange]:
    """The latest edits of the schema (or of one feature), newest first."""
    changes = FeatureDefinitionChange.objects.for_institution(institution).select_related("feature", "actor")
    if feature is not None:
        changes = changes.filter(feature=feature)
    return list(changes.order_by("-changed_at", "-id")[:limit])


def current_student_condition(prefix: str = "") -> Q:
    """What makes a student current, as a condition on ``Student`` (``prefix`` names the path
    from another model, e.g. ``"student__"``)."""
    return Q(**{f"{prefix}outcome": Outcome.ENROLLED}) & ~Q(**{f"{prefix}status": EnrolmentStatus.INACTIVE})


def current_students(*, institution: Institution) -> QuerySet[Student]:
    """Students still studying: the ones the model scores."""
    return Student.objects.for_institution(institution).filter(current_student_condition())


def student_outcome_counts(*, institution: Institution) -> dict[str, int]:
    counts = Student.objects.for_institution(institution).aggregate(
        total=Count("id"),
        current=Count("id", filter=Q(outcome=Outcome.ENROLLED) & ~Q(status=EnrolmentStatus.INACTIVE)),
        dropped_out=Count("id", filter=Q(outcome=Outcome.DROPPED_OUT)),
        graduated=Count("id", filter=Q(outcome=Outcome.GRADUATED)),
    )
    return {key: value or 0 for key, value in counts.items()}


def student_search(*, institution: Institution, query: str = "") -> QuerySet[Student]:
    students = Student.objects.for_institution(institution).select_related("advisor")
    query = query.strip()
    if query:
        # The student whose id is exactly what was typed comes first (the navigation bar's search).
        students = students.filter(
            Q(external_id__icontains=query) | Q(name__icontains=query) | Q(email__icontains=query)
            | Q(program__icontains=query)
        ).order_by(Case(When(external_id__iexact=query, then=0), default=1), "external_id", "pk")
    return students


def access_student(*, institution: Institution, student_id: int | str) -> Student:
    """The institution's student with ``student_id`` from input; another institution's student,
    a missing one and a malformed id raise the same Http404."""
    return object_for_input_id(Student.objects.for_institution(institution), student_id)


def access_feature_definition(*, institution: Institution, feature_definition_id: int | str) -> FeatureDefinition:
    """The institution's feature definition with ``feature_definition_id`` from input (Http404
    alike for another institution's, a missing or a malformed id)."""
    return object_for_input_id(FeatureDefinition.objects.for_institution(institution), feature_definition_id)


STUDENT_FIELD_LABELS = {"name": "Name", "email": "Email", "program": "Program", "cohort": "Cohort",
                        "status": "Enrolment status", "outcome": "Outcome", "outcome_date": "Outcome date",
                        "advisor": "Advisor", "advisor_id": "Advisor", "external_id": "Student id"}


def student_change_history(*, institution: Institution, student: Student, limit: int = 50) -> list[dict]:
    """The student's recorded data changes, newest first: when, how (import, API, web page), who,
    and each field's old and new value, with the institution's own label for a feature."""
    labels = dict(FeatureDefinition.objects.for_institution(institution).values_list("key", "label"))
    rows = (StudentChange.objects.for_institution(institution).filter(student=student)
            .select_related("actor").order_by("-changed_at", "-id")[:limit])
    history = []
    for change in rows:
        fields = []
        for name, pair in sorted((change.changes or {}).items()):
            old, new = [*pair, None, None][:2] if isinstance(pair, (list, tuple)) else (None, pair)
            key = name.removeprefix("features.")
            label = labels.get(key, key) if name.startswith("features.") else STUDENT_FIELD_LABELS.get(name, name)
            fields.append({"label": label, "old": old, "new": new})
        history.append({"changed_at": change.changed_at, "source": change.get_source_display(),
                        "actor": change.actor, "created": change.created, "job_id": change.job_id, "fields": fields})
    return history
