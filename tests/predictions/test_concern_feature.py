"""The number of instructor concerns this term as a model feature (issue 21, item 3).

Two institutions throughout: A switches the feature on, B must see nothing of it. The counts
come from real survey rows (terms, surveys, invitations, concern types and marks), written by
the one set-based statement of predictions/sql.py.
"""

from __future__ import annotations

import datetime
import itertools

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses.models import (
    AcademicSession,
    ConcernKind,
    ConcernType,
    Course,
    Enrolment,
    Instructor,
    ProgressSurvey,
    Section,
    SurveyInvitation,
    SurveyMark,
    TeachingAssignment,
)
from courses.signals import survey_marks_saved
from institutions.scoping import institution_scope
from predictions.frames import feature_specs
from predictions.models import PredictionSettings
from predictions.services.concern_feature import (
    CONCERNS_FEATURE_KEY,
    ConcernFeatureRefused,
    concern_counts_refresh,
    concern_feature_preview,
    concern_feature_set,
    institution_today,
)
from students.models import (
    ChangeSource,
    FeatureDefinition,
    FeatureDefinitionChange,
    FeatureKind,
    Outcome,
    Student,
    StudentChange,
)

_tokens = itertools.count()


class Surveys:
    """One institution's survey set-up: a current and a past term, a concern and a kudos type,
    one instructor teaching one section, and a survey with its invitation in each term."""

    def __init__(self, institution, today: datetime.date):
        self.institution = institution
        objects = lambda model: model.objects.for_institution(institution)  # noqa: E731
        self.current_term = objects(AcademicSession).create(
            source_id="T-now", title="This term", kind="term",
            start_date=today - datetime.timedelta(days=30), end_date=today + datetime.timedelta(days=30))
        self.past_term = objects(AcademicSession).create(
            source_id="T-past", title="Last term", kind="term",
            start_date=today - datetime.timedelta(days=200), end_date=today - datetime.timedelta(days=60))
        self.concern = objects(ConcernType).create(key="attendance", label="Attendance", kind=ConcernKind.CONCERN)
        self.other_concern = objects(ConcernType).create(key="low_grades", label="Low grades",
                                                         kind=ConcernKind.CONCERN)
        self.kudos = objects(ConcernType).create(key="kudos", label="Kudos", kind=ConcernKind.KUDOS)
        course = objects(Course).create(source_id="C1", title="Chemistry")
        self.section = objects(Section).create(source_id="S1", course=course, title="Chemistry A")
        self.instructor = objects(Instructor).create(source_id="I1", given_name="Ada", email="ada@example.org")
        objects(TeachingAssignment).create(source_id="TA1", section=self.section, instructor=self.instructor)
        self.invitation = self._invitation(self.current_term)
        self.past_invitation = self._invitation(self.past_term)

    def _invitation(self, term) -> SurveyInvitation:
        now = timezone.now()
        survey = ProgressSurvey.objects.for_institution(self.institution).create(
            term=term, title=f"Survey of {term.title}", opens_at=now - datetime.timedelta(days=1),
            closes_at=now + datetime.timedelta(days=1))
        return SurveyInvitation.objects.for_institution(self.institution).create(
            survey=survey, instructor=self.instructor, token_hash=f"{next(_tokens):064x}")

    def mark(self, student, concern_type=None, *, invitation=None) -> SurveyMark:
        return SurveyMark.objects.for_institution(self.institution).create(
            invitation=invitation or self.invitation, section=self.section, student=student,
            concern_type=concern_type or self.concern)

    def enrol(self, student) -> None:
        Enrolment.objects.for_institution(self.institution).create(
            source_id=f"E{student.pk}", section=self.section, student=student)


def _today(tenant) -> datetime.date:
    return institution_today(tenant.institution)


def _current(tenant) -> list[Student]:
    return [s for s in tenant.students if s.outcome == Outcome.ENROLLED]


def _stored(tenant, student) -> object:
    return Student.objects.for_institution(tenant.institution).get(pk=student.pk).features.get(CONCERNS_FEATURE_KEY)


def _switch(tenant, enabled: bool):
    with institution_scope(tenant.institution):
        return concern_feature_set(institution=tenant.institution, enabled=enabled, actor=tenant.admin)


@pytest.fixture
def surveys(tenants):
    tenant_a, tenant_b = tenants
    with institution_scope(tenant_a.institution):
        a = Surveys(tenant_a.institution, _today(tenant_a))
    with institution_scope(tenant_b.institution):
        b = Surveys(tenant_b.institution, _today(tenant_b))
    return a, b


def test_switching_on_in_one_institution_adds_the_feature_there_and_leaves_the_other_untouched(tenants, surveys):
    tenant_a, tenant_b = tenants
    b_features_before = {s.pk: dict(s.features) for s in Student.objects.for_institution(tenant_b.institution)}

    assert _switch(tenant_a, True) is True

    definition = FeatureDefinition.objects.for_institution(tenant_a.institution).get(key=CONCERNS_FEATURE_KEY)
    assert (definition.kind, definition.label, definition.unit, definition.min_value) == (
        FeatureKind.NUMERIC, "Instructor concerns this term", "concerns", 0)
    assert not definition.protected and not definition.actionable and not definition.is_retired
    assert "progress surveys" in definition.description
    created = FeatureDefinitionChange.objects.for_institution(tenant_a.institution).get(feature=definition)
    assert (created.actor, created.source, created.changes) == (
        tenant_a.admin, ChangeSource.WEB, {"created": [None, CONCERNS_FEATURE_KEY]})
    settings_a = PredictionSettings.objects.for_institution(tenant_a.institution).get()
    assert settings_a.concerns_feature and settings_a.concerns_feature_changed_by == tenant_a.admin
    assert settings_a.concerns_feature_changed_at is not None
    with institution_scope(tenant_a.institution):
        assert CONCERNS_FEATURE_KEY in [spec.key for spec in feature_specs(institution=tenant_a.institution)]
    # Every current student of A now has a count (0: nobody was marked); past students are left as they were.
    assert [_stored(tenant_a, s) for s in _current(tenant_a)] == [0] * len(_current(tenant_a))
    assert all(CONCERNS_FEATURE_KEY not in s.features for s in tenant_a.students if s.outcome != Outcome.ENROLLED)

    assert not FeatureDefinition.objects.for_institution(tenant_b.institution).filter(key=CONCERNS_FEATURE_KEY).exists()
    assert {s.pk: s.features for s in Student.objects.for_institution(tenant_b.institution)} == b_features_before
    assert not PredictionSettings.objects.for_institution(tenant_b.institution).filter(concerns_feature=True).exists()
    assert not StudentChange.objects.for_institution(tenant_b.institution).filter(source=ChangeSource.SURVEYS).exists()
    assert _switch(tenant_a, True) is False  # already on: nothing recorded twice
    assert FeatureDefinitionChange.objects.for_institution(tenant_a.institution).count() == 1


def test_the_count_is_concerns_only_of_the_current_term_and_of_this_institution(tenants, surveys):
    tenant_a, tenant_b = tenants
    a, b = surveys
    marked, other = _current(tenant_a)[:2]
    twin_in_b = next(s for s in tenant_b.students if s.external_id == marked.external_id)
    with institution_scope(tenant_a.institution):
        a.mark(marked)
        a.mark(marked, a.other_concern)
        a.mark(marked, a.kudos)  # kudos are no concern
        a.mark(other, a.kudos)
        a.mark(marked, invitation=a.past_invitation)  # last term's concern
        a.mark(other, invitation=a.past_invitation)
    with institution_scope(tenant_b.institution):
        for concern_type in (b.concern, b.other_concern):
            b.mark(twin_in_b, concern_type)  # the same external id in B: B's concerns, not A's

    _switch(tenant_a, True)

    assert _stored(tenant_a, marked) == 2
    assert _stored(tenant_a, other) == 0
    assert CONCERNS_FEATURE_KEY not in Student.objects.for_institution(tenant_b.institution).get(
        pk=twin_in_b.pk).features
    with institution_scope(tenant_a.institution):
        preview = concern_feature_preview(institution=tenant_a.institution)
    assert preview.current_with_concerns == 1
    assert [term.title for term in preview.terms] == ["This term"]

    _switch(tenant_b, True)
    assert Student.objects.for_institution(tenant_b.institution).get(pk=twin_in_b.pk).features[
        CONCERNS_FEATURE_KEY] == 2
    assert _stored(tenant_a, marked) == 2


def test_a_new_term_resets_the_counts_and_past_students_keep_theirs(tenants, surveys):
    tenant_a, _ = tenants
    a, _ = surveys
    marked = _current(tenant_a)[0]
    past = next(s for s in tenant_a.students if s.outcome == Outcome.DROPPED_OUT)
    with institution_scope(tenant_a.institution):
        a.mark(marked)
    _switch(tenant_a, True)
    Student.objects.for_institution(tenant_a.institution).filter(pk=past.pk).update(
        features={**past.features, CONCERNS_FEATURE_KEY: 3})  # their count when they were current
    assert _stored(tenant_a, marked) == 1

    after_the_term = a.current_term.end_date + datetime.timedelta(days=1)
    with institution_scope(tenant_a.institution):
        changed = concern_counts_refresh(institution=tenant_a.institution, today=after_the_term)

    assert changed == 1
    assert _stored(tenant_a, marked) == 0
    assert _stored(tenant_a, past) == 3


def test_today_is_the_institutions_local_date(tenant_a):
    tenant_a.institution.timezone = "Pacific/Kiritimati"  # UTC+14
    now = datetime.datetime(2026, 12, 2, 20, 0, tzinfo=datetime.UTC)
    assert institution_today(tenant_a.institution, now) == datetime.date(2026, 12, 3)
    tenant_a.institution.timezone = "America/Los_Angeles"
    assert institution_today(tenant_a.institution, datetime.datetime(2026, 12, 3, 5, 0, tzinfo=datetime.UTC)) == (
        datetime.date(2026, 12, 2))


def test_a_changed_count_is_recorded_in_the_students_history_and_an_unchanged_one_is_not(tenants, surveys):
    tenant_a, _ = tenants
    a, _ = surveys
    marked = _current(tenant_a)[0]
    _switch(tenant_a, True)
    first = StudentChange.objects.for_institution(tenant_a.institution).filter(student=marked).get()
    assert (first.source, first.actor, first.changes) == (
        ChangeSource.SURVEYS, None, {f"features.{CONCERNS_FEATURE_KEY}": [None, 0]})

    with institution_scope(tenant_a.institution):
        a.mark(marked)
        assert concern_counts_refresh(institution=tenant_a.institution) == 1
    latest = StudentChange.objects.for_institution(tenant_a.institution).filter(student=marked).order_by("-id").first()
    assert latest.changes == {f"features.{CONCERNS_FEATURE_KEY}": [0, 1]}
    assert latest.get_source_display() == "Progress surveys (platform)"
    updated_at = Student.objects.for_institution(tenant_a.institution).get(pk=marked.pk).updated_at
    changes_before = StudentChange.objects.for_institution(tenant_a.institution).count()

    with institution_scope(tenant_a.institution):
        assert concern_counts_refresh(institution=tenant_a.institution) == 0

    assert StudentChange.objects.for_institution(tenant_a.institution).count() == changes_before
    assert Student.objects.for_institution(tenant_a.institution).get(pk=marked.pk).updated_at == updated_at


def test_the_count_shows_in_the_data_change_history_with_its_label(tenants, surveys, client):
    tenant_a, _ = tenants
    from students.selectors import student_change_history

    marked = _current(tenant_a)[0]
    _switch(tenant_a, True)
    with institution_scope(tenant_a.institution):
        history = student_change_history(institution=tenant_a.institution, student=marked)
    assert history[0]["source"] == "Progress surveys (platform)"
    assert history[0]["fields"] == [{"label": "Instructor concerns this term", "old": None, "new": 0}]


def test_saved_survey_marks_update_only_the_marked_students_once_committed(tenants, surveys,
                                                                          django_capture_on_commit_callbacks):
    tenant_a, _ = tenants
    a, _ = surveys
    marked, unmarked_but_stale = _current(tenant_a)[:2]
    _switch(tenant_a, True)
    changes_of_unmarked = StudentChange.objects.for_institution(tenant_a.institution).filter(
        student=unmarked_but_stale).count()
    with institution_scope(tenant_a.institution):
        a.mark(unmarked_but_stale)  # saved without the signal: only the nightly refresh would see it
        with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
            mark = a.mark(marked)
            survey_marks_saved.send(sender=SurveyInvitation, institution=tenant_a.institution,
                                    invitation=a.invitation, created=[mark], updated=[], removed=[])
            assert _stored(tenant_a, marked) == 0  # not before the marks are committed
    assert callbacks
    assert _stored(tenant_a, marked) == 1
    assert _stored(tenant_a, unmarked_but_stale) == 0
    assert StudentChange.objects.for_institution(tenant_a.institution).filter(
        student=unmarked_but_stale).count() == changes_of_unmarked


def test_a_taken_back_mark_lowers_the_count_of_the_instructors_students(tenants, surveys,
                                                                       django_capture_on_commit_callbacks):
    tenant_a, _ = tenants
    a, _ = surveys
    marked = _current(tenant_a)[0]
    with institution_scope(tenant_a.institution):
        a.enrol(marked)
        mark = a.mark(marked)
    _switch(tenant_a, True)
    assert _stored(tenant_a, marked) == 1
    with (institution_scope(tenant_a.institution), django_capture_on_commit_callbacks(execute=True),
          transaction.atomic()):
        mark_id = mark.pk
        mark.delete()
        survey_marks_saved.send(sender=SurveyInvitation, institution=tenant_a.institution,
                                invitation=a.invitation, created=[], updated=[], removed=[mark_id])
    assert _stored(tenant_a, marked) == 0


def test_saved_marks_write_nothing_while_the_feature_is_not_in_use(tenants, surveys,
                                                                  django_capture_on_commit_callbacks):
    tenant_a, _ = tenants
    a, _ = surveys
    marked = _current(tenant_a)[0]
    with (institution_scope(tenant_a.institution), django_capture_on_commit_callbacks(execute=True),
          transaction.atomic()):
        mark = a.mark(marked)
        survey_marks_saved.send(sender=SurveyInvitation, institution=tenant_a.institution,
                                invitation=a.invitation, created=[mark], updated=[], removed=[])
    assert _stored(tenant_a, marked) is None
    assert not StudentChange.objects.for_institution(tenant_a.institution).filter(source=ChangeSource.SURVEYS).exists()


def _refresh_statements(tenant) -> tuple[int, int]:
    """(queries, statements that write students) of one refresh of every current student."""
    with institution_scope(tenant.institution), CaptureQueriesContext(connection) as queries:
        concern_counts_refresh(institution=tenant.institution)
    writes = [q["sql"] for q in queries.captured_queries if 'UPDATE "students_student"' in q["sql"]]
    return len(queries.captured_queries), len(writes)


def test_the_refresh_is_one_statement_whatever_the_number_of_students(tenants, surveys):
    tenant_a, _ = tenants
    a, _ = surveys
    _switch(tenant_a, True)
    with institution_scope(tenant_a.institution):
        for student in _current(tenant_a):
            a.mark(student)
    small = _refresh_statements(tenant_a)
    assert _stored(tenant_a, _current(tenant_a)[0]) == 1

    more = Student.objects.for_institution(tenant_a.institution).bulk_create(
        [Student(institution=tenant_a.institution, external_id=f"X{i:03d}", features={}) for i in range(40)])
    with institution_scope(tenant_a.institution):
        for student in more:
            a.mark(student)
            a.mark(student, a.other_concern)
    large = _refresh_statements(tenant_a)

    assert small == large
    assert small[1] == 1
    assert {_stored(tenant_a, s) for s in more} == {2}
    assert StudentChange.objects.for_institution(tenant_a.institution).filter(
        student__in=more, changes={f"features.{CONCERNS_FEATURE_KEY}": [None, 2]}).count() == 40


def test_switching_off_retires_the_feature_and_keeps_the_values(tenants, surveys):
    tenant_a, _ = tenants
    a, _ = surveys
    marked = _current(tenant_a)[0]
    with institution_scope(tenant_a.institution):
        a.mark(marked)
    _switch(tenant_a, True)

    assert _switch(tenant_a, False) is True

    definition = FeatureDefinition.objects.for_institution(tenant_a.institution).get(key=CONCERNS_FEATURE_KEY)
    assert definition.is_retired
    retired = FeatureDefinitionChange.objects.for_institution(tenant_a.institution).filter(
        feature=definition).order_by("-id").first()
    assert (retired.actor, retired.changes) == (tenant_a.admin, {"retired": [False, True]})
    with institution_scope(tenant_a.institution):
        assert CONCERNS_FEATURE_KEY not in [spec.key for spec in feature_specs(institution=tenant_a.institution)]
        # No live model reads it: the counts are no longer kept up to date.
        a.mark(marked, a.other_concern)
        assert concern_counts_refresh(institution=tenant_a.institution) == 0
    assert _stored(tenant_a, marked) == 1
    settings_a = PredictionSettings.objects.for_institution(tenant_a.institution).get()
    assert not settings_a.concerns_feature and settings_a.concerns_feature_changed_by == tenant_a.admin

    assert _switch(tenant_a, True) is True  # switched on again: restored, not duplicated
    definition.refresh_from_db()
    assert not definition.is_retired
    assert FeatureDefinition.objects.for_institution(tenant_a.institution).filter(key=CONCERNS_FEATURE_KEY).count() == 1
    assert _stored(tenant_a, marked) == 2


def test_a_feature_of_that_key_that_is_no_number_is_refused_and_nothing_changes(tenants):
    tenant_a, _ = tenants
    FeatureDefinition.objects.for_institution(tenant_a.institution).create(
        key=CONCERNS_FEATURE_KEY, label="Concerns (our own)", kind=FeatureKind.CATEGORICAL)
    with pytest.raises(ConcernFeatureRefused, match="categorical"):
        _switch(tenant_a, True)
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).filter(concerns_feature=True).exists()
    assert not StudentChange.objects.for_institution(tenant_a.institution).filter(source=ChangeSource.SURVEYS).exists()


def test_the_scheduled_rescore_first_brings_every_current_students_count_up_to_date(tenants, surveys):
    from institutions.models import Job
    from predictions.tasks import scheduled_rescore

    tenant_a, tenant_b = tenants
    a, b = surveys
    _switch(tenant_a, True)
    marked = _current(tenant_a)[1]
    with institution_scope(tenant_a.institution):
        a.mark(marked)  # saved without the signal (or before a term change): the nightly refresh catches it
    b_marked = _current(tenant_b)[1]
    with institution_scope(tenant_b.institution):
        b.mark(b_marked)

    scheduled_rescore(institution_id=tenant_a.institution.pk)

    assert _stored(tenant_a, marked) == 1
    assert Job.objects.for_institution(tenant_a.institution).filter(kind="rescore", triggered_by="schedule").exists()
    assert CONCERNS_FEATURE_KEY not in Student.objects.for_institution(tenant_b.institution).get(
        pk=b_marked.pk).features
    assert not Job.objects.for_institution(tenant_b.institution).exists()


def test_an_instructor_saving_their_roster_updates_the_counts_of_that_section_only(tenants, surveys,
                                                                                  django_capture_on_commit_callbacks):
    """Through courses' own save of an instructor's answers (the survey page's service)."""
    from courses.surveys import RosterAnswer, survey_marks_save

    tenant_a, tenant_b = tenants
    a, b = surveys
    first, second, elsewhere = _current(tenant_a)[:3]
    for student in (first, second):
        with institution_scope(tenant_a.institution):
            a.enrol(student)
    _switch(tenant_a, True)
    _switch(tenant_b, True)
    with institution_scope(tenant_a.institution):
        a.mark(elsewhere)  # not on this roster, saved without the signal: left for the nightly refresh
    with institution_scope(tenant_b.institution):
        b.mark(next(s for s in tenant_b.students if s.external_id == first.external_id))  # B's own, unsignalled

    with institution_scope(tenant_a.institution), django_capture_on_commit_callbacks(execute=True):
        survey_marks_save(invitation=a.invitation, section=a.section, answers={
            first.pk: RosterAnswer(type_ids={a.concern.pk, a.other_concern.pk, a.kudos.pk}),
            second.pk: RosterAnswer(type_ids={a.kudos.pk}),
        })
    assert (_stored(tenant_a, first), _stored(tenant_a, second), _stored(tenant_a, elsewhere)) == (2, 0, 0)

    with institution_scope(tenant_a.institution), django_capture_on_commit_callbacks(execute=True):
        survey_marks_save(invitation=a.invitation, section=a.section, answers={
            first.pk: RosterAnswer(type_ids={a.concern.pk}), second.pk: RosterAnswer(type_ids={a.concern.pk}),
        })
    assert (_stored(tenant_a, first), _stored(tenant_a, second), _stored(tenant_a, elsewhere)) == (1, 1, 0)
    assert not Student.objects.for_institution(tenant_b.institution).filter(
        features__concerns_this_term__gt=0).exists()
