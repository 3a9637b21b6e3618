"""The demo a new user meets: both institutions with a live model, a dashboard, a term of
interventions the effectiveness report can weigh, synthetic names and cohorts, and nothing that
crosses from one institution to the other. Built once for the module (two trainings)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from courses.models import ProgressSurvey, SurveyInvitation, SurveyMark
from demo.builder import INSTITUTIONS, NOTICE, _delete_demo_institution, build_demo_institutions
from demo.names import synthetic_name
from institutions.models import Institution, Membership
from interventions.effectiveness import effectiveness_report
from interventions.models import Alert, AlertStatus, Flag, Intervention, InterventionStatus, RiskSnapshot
from predictions.models import LatestPrediction, ModelVersion, Prediction
from predictions.selectors import model_version_live
from students.models import FeatureDefinition, Outcome, Student
from workspace.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        result = build_demo_institutions(search_iterations=4)  # as `make run` does
        yield {item.slug: item for item in result}
        for institution in Institution.objects.filter(slug__in=[spec.slug for spec in INSTITUTIONS]):
            _delete_demo_institution(institution)


def institution(slug):
    return Institution.objects.get(slug=slug)


def test_demo_holds_the_files_students_with_their_real_outcomes_after_the_replayed_term(built):
    demo = institution("demo")
    students = Student.objects.for_institution(demo)
    assert students.count() == 4424
    assert {o: students.filter(outcome=o).count() for o in (Outcome.DROPPED_OUT, Outcome.GRADUATED, Outcome.ENROLLED)} \
        == {Outcome.DROPPED_OUT: 1421, Outcome.GRADUATED: 2209, Outcome.ENROLLED: 794}
    finished = students.filter(outcome_date__isnull=False)
    assert finished.count() == built["demo"].history.finished_last_term > 0
    assert Student.objects.for_institution(institution("northfield")).count() == 1475


@pytest.mark.parametrize("slug", ["demo", "northfield"])
def test_each_institution_has_a_live_model_and_a_dashboard_with_flagged_students(built, client, slug):
    inst = institution(slug)
    live = model_version_live(institution=inst)  # the latest stage's live model scores the students
    assert live is not None and live.training_size >= 200
    latest = LatestPrediction.objects.for_institution(inst)
    current = Student.objects.for_institution(inst).filter(outcome=Outcome.ENROLLED).count()
    assert latest.count() == current > 0 and latest.filter(flagged=True).exists()
    snapshots = RiskSnapshot.objects.for_institution(inst).order_by("taken_at")
    # Flagged over time: at the term's start (with last term's finishers) and today.
    assert snapshots.first().taken_at.date() < snapshots.last().taken_at.date()
    # New institutions flag to the advisors' capacity, so the term's start and today may both be at it.
    assert snapshots.last().flagged == latest.filter(flagged=True).count() <= snapshots.first().flagged
    admin = Membership.objects.for_institution(inst).filter(role="admin").first().user
    client.force_login(admin)
    page = client.get(reverse("dashboard", kwargs={"institution_slug": slug}))
    assert page.status_code == 200
    body = page.content.decode()
    assert NOTICE.split(":")[0] in body and "synthetic" in body
    assert str(latest.filter(flagged=True).count()) in body


@pytest.mark.parametrize("slug", ["demo", "northfield"])
def test_effectiveness_report_weighs_last_terms_interventions(built, client, slug):
    inst = institution(slug)
    report = effectiveness_report(institution=inst)
    used = [effect for effect in report if effect.interventions]
    assert len(used) >= 4
    concluded = [effect for effect in used if effect.enough]
    assert concluded, [effect.verdict for effect in used]
    for effect in concluded:
        assert effect.dropout_interval and effect.comparison_interval and effect.comparison_students >= 30
    admin = Membership.objects.for_institution(inst).filter(role="admin").first().user
    client.force_login(admin)
    body = client.get(reverse("effectiveness", kwargs={"institution_slug": slug})).content.decode()
    assert concluded[0].verdict in body


def test_last_terms_interventions_are_closed_with_an_outcome_and_this_terms_are_open(built):
    demo = institution("demo")
    interventions = Intervention.objects.for_institution(demo)
    past = interventions.filter(student__outcome__in=[Outcome.DROPPED_OUT, Outcome.GRADUATED])
    assert past.exists() and not past.exclude(status=InterventionStatus.CLOSED).exists()
    assert not past.filter(outcome="").exists()
    # Every past intervention came after the score it answered, which came before the term's outcomes.
    first_score = Prediction.objects.for_institution(demo).order_by("created_at").first().created_at.date()
    assert not past.filter(date__lt=first_score).exists()
    current = interventions.filter(student__outcome=Outcome.ENROLLED, status=InterventionStatus.OPEN)
    assert current.exists() and not current.filter(follow_up_date__isnull=True).exists()
    flags = Flag.objects.for_institution(demo)
    assert flags.filter(resolved_at__isnull=False).exists() and flags.filter(resolved_at__isnull=True).exists()


def test_students_have_synthetic_names_emails_and_cohorts(built):
    for spec in INSTITUTIONS:
        students = Student.objects.for_institution(institution(spec.slug))
        assert not students.filter(name="").exists() and not students.filter(cohort="").exists()
        assert not students.exclude(email__endswith=f"@{spec.email_domain}").exists()
        assert students.values("cohort").distinct().count() >= 4
    assert synthetic_name(language="pt", seed="demo:7", female=True) == \
        synthetic_name(language="pt", seed="demo:7", female=True)


def test_nothing_in_the_demo_crosses_institutions(built, client):
    for spec in INSTITUTIONS:
        inst = institution(spec.slug)
        members = set(Membership.objects.for_institution(inst).values_list("user_id", flat=True))
        student_ids = set(Student.objects.for_institution(inst).values_list("id", flat=True))
        interventions = Intervention.objects.for_institution(inst)
        assert set(interventions.values_list("student_id", flat=True)) <= student_ids
        assert set(interventions.values_list("author_id", flat=True)) <= members
        assert set(interventions.values_list("intervention_type__institution_id", flat=True)) == {inst.pk}
        flags = Flag.objects.for_institution(inst)
        assert set(flags.values_list("student_id", flat=True)) <= student_ids
        assert set(flags.exclude(assigned_to=None).values_list("assigned_to", flat=True)) <= members
        assert set(flags.values_list("raised_by", flat=True)) <= members
        assert set(Prediction.objects.for_institution(inst).values_list("student_id", flat=True)) <= student_ids
        advisors = set(Student.objects.for_institution(inst).exclude(advisor=None).values_list("advisor", flat=True))
        assert advisors <= members
    demo_student = Student.objects.for_institution(institution("demo")).filter(outcome=Outcome.ENROLLED).first()
    client.force_login(Membership.objects.for_institution(institution("northfield")).get(role="admin").user)
    assert client.get(reverse("student-detail", kwargs={"institution_slug": "northfield", "pk": demo_student.pk})) \
        .status_code == 404
    assert client.get(reverse("student-detail", kwargs={"institution_slug": "demo", "pk": demo_student.pk})) \
        .status_code in (403, 404)


@pytest.mark.parametrize("slug", [spec.slug for spec in INSTITUTIONS])
def test_the_closed_loop_has_a_survey_routed_alerts_worked_and_instructors_told(built, client, slug):
    inst = institution(slug)
    care = built[slug].care
    survey = ProgressSurvey.objects.for_institution(inst).get()
    invitations = SurveyInvitation.objects.for_institution(inst).filter(survey=survey)
    assert invitations.count() == care.instructors > 0
    assert 0 < invitations.exclude(answered_at=None).count() == care.answered < care.instructors  # reminders to send
    alerts = Alert.objects.for_institution(inst)
    assert alerts.count() == care.alerts > 0
    assert not alerts.filter(assigned_user=None, assigned_office=None).exists()  # every one routed
    assert alerts.filter(assigned_office__name="Tutoring centre").exists()  # the low-grades rule
    statuses = set(alerts.values_list("status", flat=True))
    assert {AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.CLOSED} <= statuses
    closed = alerts.filter(status=AlertStatus.CLOSED)
    assert closed.count() == care.closed and not closed.filter(raiser_told_at=None).exists()
    members = set(Membership.objects.for_institution(inst).values_list("user_id", flat=True))
    assert set(Notification.objects.for_institution(inst).values_list("user_id", flat=True)) <= members
    assert Notification.objects.for_institution(inst).filter(kind="alert_routed").exists()
    students = set(Student.objects.for_institution(inst).values_list("id", flat=True))
    assert set(alerts.values_list("student_id", flat=True)) <= students
    assert SurveyMark.objects.for_institution(inst).filter(concern_type__kind="kudos").count() == care.kudos
    admin = Membership.objects.for_institution(inst).get(role="admin").user
    client.force_login(admin)
    page = client.get(reverse("alert-list", kwargs={"institution_slug": slug}))
    assert page.status_code == 200
    assert client.get(reverse("survey-detail", kwargs={"institution_slug": slug, "pk": survey.pk})).status_code == 200


def test_building_again_changes_nothing(built):
    before = {slug: Intervention.objects.for_institution(institution(slug)).count() for slug in built}
    again = build_demo_institutions()
    assert [(item.slug, item.students, item.created) for item in again] == [
        ("demo", 4424, False), ("northfield", 1475, False)]
    assert {slug: Intervention.objects.for_institution(institution(slug)).count() for slug in built} == before


@pytest.mark.parametrize("slug", ["demo", "northfield"])
def test_demo_trains_a_model_per_stage_from_enrolment_to_the_end_of_year_1(built, slug):
    """Each stage's model reads only what is known then; the end of year 1 (term 2) reads everything."""
    versions = {version.stage.key: version for version in
                ModelVersion.objects.for_institution(institution(slug)).select_related("stage")}
    assert {"application", "enrolment", "end_of_term_1", "end_of_term_2"} <= set(versions)
    assert "units_1st_approved" not in versions["enrolment"].feature_keys
    assert "tuition_up_to_date" in versions["enrolment"].feature_keys
    assert "units_2nd_approved" not in versions["end_of_term_1"].feature_keys
    assert "units_2nd_approved" in versions["end_of_term_2"].feature_keys
    assert model_version_live(institution=institution(slug)).stage.key == "end_of_term_2"


@pytest.mark.parametrize("slug", ["demo", "northfield"])
def test_demo_features_say_from_which_stage_they_are_known(built, slug):
    """Semester results only at the end of their term; fees and scholarship at enrolment."""
    definitions = FeatureDefinition.objects.for_institution(institution(slug)).select_related("known_from")
    known = {definition.key: definition.known_from.key for definition in definitions}
    assert known["units_1st_approved"] == known["units_1st_grade"] == "end_of_term_1"
    assert known["units_2nd_approved"] == known["units_2nd_grade"] == "end_of_term_2"
    assert known["tuition_up_to_date"] == known["units_1st_enrolled"] == "enrolment"
    assert known["admission_grade"] == "application"
    assert {definition.known_from.institution_id for definition in definitions} == {institution(slug).pk}
