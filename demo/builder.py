"""Build the demo institutions: real UCI records, synthetic names and cohorts, a replayed term.

``Demo Polytechnic`` holds all 4,424 UCI students; ``Northfield College`` every 5th row again,
under its own ids, names and staff, so that tenant isolation is visible: its admin sees none of
the demo's students, and vice versa. Each institution then lives through a term of its own
(``demo.history``): a model trained on older cohorts scores the students, advisors work the
flagged ones and log what they did, the term's outcomes become known, and today's scores follow.
docs/demo.md describes every rule; the notice on each page says which data are synthetic.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from courses.models import ProgressSurvey, SurveyMark
from institutions.models import Institution, Membership, Role
from institutions.scoping import institution_scope
from institutions.services import institution_create
from interventions.models import Alert, Intervention
from predictions.models import LatestPrediction, ModelVersion, Prediction
from students.demo import _create_schema, _feature_value, read_uci_rows
from students.models import ChangeSource, EnrolmentStatus, Outcome, Student, StudentChange
from students.uci_schema import UCI_COLUMNS, UCI_OUTCOMES, UCI_TARGET_HEADER

from .care import DemoCare, build_closing_the_loop
from .history import DemoHistory, Timeline, replay_history
from .names import seeded_random, synthetic_email, synthetic_name

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
    DemoUser("owen", "Owen", "Reid", (("northfield", Role.ADVISOR),)),
)


@dataclass(frozen=True)
class DemoInstitution:
    slug: str
    name: str
    timezone: str
    prefix: str
    every: int  # every n-th UCI row
    names: str  # which name lists (demo.names)
    email_domain: str
    advisors: tuple[str, ...]


INSTITUTIONS = (
    DemoInstitution("demo", "Demo Polytechnic", "Europe/Lisbon", "UCI", 1, "pt", "students.demo-polytechnic.example",
                    ("ana", "ben")),
    DemoInstitution("northfield", "Northfield College", "Europe/London", "NF", 3, "en",
                    "students.northfield.example", ("owen", "northfield-admin")),
)
DEMO_SLUGS = tuple(spec.slug for spec in INSTITUTIONS)
NOTICE = ("Demo data: real, anonymised student records from the UCI dropout data set (CC BY 4.0); the names, "
          "e-mail addresses, cohorts, staff flags and intervention history are synthetic (docs/demo.md).")
# Share of the students with a known outcome who finished (graduated or left) at the end of the
# replayed term: they were still enrolled when it began, so the model scored them then.
LAST_TERM_SHARE = 0.3


@dataclass
class BuiltInstitution:
    slug: str
    students: int
    created: bool
    history: DemoHistory | None = None
    care: DemoCare | None = None


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


def _cohort(spec: DemoInstitution, number: int, outcome: str, timeline: Timeline) -> tuple[str, bool]:
    """(entry cohort, finished at the end of the replayed term) for one row, drawn from its seed."""
    rng = seeded_random("cohort", spec.slug, number)
    year = timeline.term_start.year
    if outcome == Outcome.ENROLLED:
        return f"{year - rng.choice((1, 2))}-autumn", False
    if rng.random() < LAST_TERM_SHARE:
        return f"{year - 3}-autumn", True
    return f"{year - rng.randint(4, 7)}-autumn", False


@transaction.atomic
def _create_institution(spec: DemoInstitution, rows: list[dict[str, str]], users: dict, timeline: Timeline,
                        ) -> tuple[Institution, dict[int, str]]:
    """The institution, its members, schema and students; returns the true outcome of each student
    who finished last term (stored as enrolled until the replay reaches the term's end)."""
    institution = institution_create(slug=spec.slug, name=spec.name, timezone=spec.timezone)
    Institution.objects.filter(pk=institution.pk).update(notice=NOTICE)
    institution.notice = NOTICE
    for user_spec in DEMO_USERS:
        for member_slug, role in user_spec.memberships:
            if member_slug == spec.slug:
                Membership.objects.for_institution(institution).create(user=users[user_spec.username], role=role)
    chosen = [(index + 1, row) for index, row in enumerate(rows) if index % spec.every == 0]
    _create_schema(institution, [row for _, row in chosen])
    course = next(column for column in UCI_COLUMNS if column.key == "course")
    advisors = [users[username] for username in spec.advisors]
    students, finishing = [], {}
    for position, (row_number, row) in enumerate(chosen, start=1):
        outcome = UCI_OUTCOMES[row[UCI_TARGET_HEADER].strip()]
        cohort, finishes_last_term = _cohort(spec, row_number, outcome, timeline)
        external_id = f"{spec.prefix}-{position:05d}"
        current = outcome == Outcome.ENROLLED or finishes_last_term
        name = synthetic_name(language=spec.names, seed=f"{spec.slug}:{row_number}",
                              female=row["Gender"].strip() == "0")
        student = Student(
            institution=institution, external_id=external_id, name=name,
            email=synthetic_email(name=name, number=position, domain=spec.email_domain),
            program=course.code_labels.get(row[course.header].strip(), ""),
            cohort=cohort,
            outcome=Outcome.ENROLLED if current else outcome,
            status=EnrolmentStatus.ACTIVE if current else EnrolmentStatus.INACTIVE,
            features={column.key: _feature_value(column.kind, row[column.header]) for column in UCI_COLUMNS},
            advisor=advisors[position % len(advisors)] if current else None,
        )
        students.append(student)
        if finishes_last_term:
            finishing[external_id] = outcome
    created = Student.objects.for_institution(institution).bulk_create(students, batch_size=1000)
    changes = StudentChange.objects.for_institution(institution).bulk_create(
        [StudentChange(institution=institution, student=student, source=ChangeSource.SYSTEM, created=True,
                       changes={"external_id": [None, student.external_id]}) for student in created],
        batch_size=1000,
    )
    # The records arrived before the replayed term began (the first import).
    StudentChange.objects.for_institution(institution).filter(pk__in=[c.pk for c in changes]).update(
        changed_at=timeline.at(timeline.imported))
    by_external_id = {student.external_id: student.pk for student in created}
    return institution, {by_external_id[external_id]: outcome for external_id, outcome in finishing.items()}


@transaction.atomic
def _delete_demo_institution(institution: Institution) -> None:
    """Scores and models are protected from a cascade (history must not vanish by accident): the
    demo removes them itself, newest dependants first, then the institution with the rest."""
    LatestPrediction.objects.for_institution(institution).delete()
    Prediction.objects.for_institution(institution).delete()
    ModelVersion.objects.for_institution(institution).delete()
    Intervention.objects.for_institution(institution).delete()
    Alert.objects.for_institution(institution).delete()  # its concern type is protected
    SurveyMark.objects.for_institution(institution).delete()
    ProgressSurvey.objects.for_institution(institution).delete()  # its term is protected
    Institution.objects.filter(pk=institution.pk).delete()


def build_demo_institutions(
    *, reset: bool = False, search_iterations: int | None = 4, today: datetime.date | None = None,
    progress: Callable[[str, float, str], None] | None = None,
) -> list[BuiltInstitution]:
    """Create (or with ``reset``, recreate) the demo institutions, each with a live model.

    Existing demo institutions are left untouched unless ``reset`` is given, so running the
    command again (as ``make run`` does) never destroys work done in the demo. An institution
    whose build fails part-way is removed again, so the next run starts it afresh.
    """
    if reset:
        for institution in Institution.objects.filter(slug__in=DEMO_SLUGS):
            _delete_demo_institution(institution)
    existing = set(Institution.objects.filter(slug__in=DEMO_SLUGS).values_list("slug", flat=True))
    rows = read_uci_rows()
    users = {spec.username: _ensure_user(spec) for spec in DEMO_USERS}
    timeline = Timeline.ending(today or timezone.localdate())
    built = []
    for spec in INSTITUTIONS:
        if spec.slug in existing:
            institution = Institution.objects.get(slug=spec.slug)
            built.append(BuiltInstitution(spec.slug, Student.objects.for_institution(institution).count(), False))
            continue
        institution, finishing = _create_institution(spec, rows, users, timeline)
        advisors = [users[username] for username in spec.advisors]
        admin = next(users[u.username] for u in DEMO_USERS if (spec.slug, Role.ADMIN) in u.memberships)
        try:
            with institution_scope(institution):
                history = replay_history(
                    institution=institution, finishing=finishing, timeline=timeline, advisors=advisors, admin=admin,
                    search_iterations=search_iterations,
                    progress=(lambda fraction, stage, slug=spec.slug: progress(slug, fraction, stage))
                    if progress else None,
                )
                care = build_closing_the_loop(institution=institution, language=spec.names,
                                              email_domain=spec.email_domain, advisors=advisors, admin=admin,
                                              today=timeline.today)
        except BaseException:
            _delete_demo_institution(institution)
            raise
        built.append(BuiltInstitution(spec.slug, Student.objects.for_institution(institution).count(), True, history,
                                      care))
    return built
