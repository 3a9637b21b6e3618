"""Build the demo institutions from the bundled UCI data (real students, synthetic ids).

``Demo Polytechnic`` holds all 4,424 UCI students: Dropout/Graduate rows are known outcomes,
Enrolled rows are the current cohort, split between two advisors' caseloads. ``Northfield
College`` is a second, small institution (every 25th row again, under its own ids) so that
tenant isolation is visible: its admin sees none of the demo's students, and vice versa.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from institutions.models import Institution, Membership, Role
from institutions.services import institution_create

from .models import ChangeSource, EnrolmentStatus, FeatureDefinition, Outcome, Student, StudentChange
from .uci_schema import UCI_COLUMNS, UCI_OUTCOMES, UCI_TARGET_HEADER

UCI_CSV = Path(__file__).resolve().parent / "demo_data" / "uci_dropout.csv"
DEMO_PASSWORD = "demo-pass-2026"

User = get_user_model()


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    memberships: tuple[tuple[str, str], ...]


DEMO_USERS = (
    DemoUser("admin", "Alex", "Admin", (("demo", Role.ADMIN),)),
    DemoUser("ana", "Ana", "Silva", (("demo", Role.ADVISOR), ("northfield", Role.VIEWER))),
    DemoUser("ben", "Ben", "Costa", (("demo", Role.ADVISOR),)),
    DemoUser("viewer", "Vera", "Viewer", (("demo", Role.VIEWER),)),
    DemoUser("northfield-admin", "Nora", "Field", (("northfield", Role.ADMIN),)),
)

INSTITUTIONS = {
    "demo": ("Demo Polytechnic", "Europe/Lisbon", "UCI"),
    "northfield": ("Northfield College", "Europe/London", "NF"),
}
NORTHFIELD_EVERY = 25


def read_uci_rows(path: Path = UCI_CSV) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        header = [name.strip() for name in next(reader)]
        return [dict(zip(header, row, strict=True)) for row in reader]


def _feature_value(kind: str, raw: str) -> float | str | bool:
    if kind == "numeric":
        return float(raw)
    if kind == "boolean":
        return raw.strip() == "1"
    return raw.strip()


def _create_schema(institution: Institution, rows: list[dict[str, str]]) -> None:
    definitions = []
    for position, column in enumerate(UCI_COLUMNS):
        categories = []
        if column.kind == "categorical":
            seen = sorted({row[column.header].strip() for row in rows}, key=int)
            categories = [{"value": code, "label": column.code_labels.get(code, f"Code {code}")} for code in seen]
        definitions.append(FeatureDefinition(
            institution=institution, key=column.key, label=column.label, kind=column.kind,
            min_value=column.min_value, max_value=column.max_value, categories=categories, unit=column.unit,
            protected=column.protected, actionable=column.actionable, position=position,
        ))
    FeatureDefinition.objects.for_institution(institution).bulk_create(definitions)


def _create_students(institution: Institution, rows: list[dict[str, str]], prefix: str,
                     advisors: list) -> int:
    course = next(column for column in UCI_COLUMNS if column.key == "course")
    students = []
    enrolled_seen = 0
    for number, row in enumerate(rows, start=1):
        outcome = UCI_OUTCOMES[row[UCI_TARGET_HEADER].strip()]
        advisor = None
        if outcome == Outcome.ENROLLED and advisors:
            advisor = advisors[enrolled_seen % len(advisors)]
            enrolled_seen += 1
        students.append(Student(
            institution=institution,
            external_id=f"{prefix}-{number:05d}",
            program=course.code_labels.get(row[course.header].strip(), ""),
            outcome=outcome,
            status=EnrolmentStatus.ACTIVE if outcome == Outcome.ENROLLED else EnrolmentStatus.INACTIVE,
            features={column.key: _feature_value(column.kind, row[column.header]) for column in UCI_COLUMNS},
            advisor=advisor,
        ))
    created = Student.objects.for_institution(institution).bulk_create(students, batch_size=1000)
    StudentChange.objects.for_institution(institution).bulk_create(
        [StudentChange(institution=institution, student=student, source=ChangeSource.SYSTEM, created=True,
                       changes={"external_id": [None, student.external_id]}) for student in created],
        batch_size=1000,
    )
    return len(created)


def _ensure_user(spec: DemoUser):
    user, created = User.objects.get_or_create(
        username=spec.username,
        defaults={"first_name": spec.first_name, "last_name": spec.last_name,
                  "email": f"{spec.username}@example.edu"},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def build_demo_institutions(*, reset: bool = False) -> dict[str, int]:
    """Create (or with ``reset``, recreate) the demo institutions. Returns students per slug.

    Existing demo institutions are left untouched unless ``reset`` is given, so running the
    command again (as ``make run`` does) never destroys work done in the demo.
    """
    if reset:
        Institution.objects.filter(slug__in=INSTITUTIONS).delete()
    existing = set(Institution.objects.filter(slug__in=INSTITUTIONS).values_list("slug", flat=True))
    rows = read_uci_rows()
    users = {spec.username: _ensure_user(spec) for spec in DEMO_USERS}
    counts: dict[str, int] = {}
    for slug, (name, timezone, prefix) in INSTITUTIONS.items():
        if slug in existing:
            counts[slug] = Student.objects.for_institution(Institution.objects.get(slug=slug)).count()
            continue
        institution = institution_create(slug=slug, name=name, timezone=timezone)
        for spec in DEMO_USERS:
            for member_slug, role in spec.memberships:
                if member_slug == slug:
                    Membership.objects.for_institution(institution).create(user=users[spec.username], role=role)
        if slug == "demo":
            chosen = rows
            advisors = [users["ana"], users["ben"]]
        else:
            chosen = [row for index, row in enumerate(rows) if index % NORTHFIELD_EVERY == 0]
            advisors = []
        _create_schema(institution, chosen)
        counts[slug] = _create_students(institution, chosen, prefix, advisors)
    return counts
