"""The administrator's survey pages: open with a preview (nothing sent before confirming), see
participation, remind only those who have not answered, close; concern types per institution.
Other institutions' administrators and other roles get nothing."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from courses.models import ConcernType, Instructor, ProgressSurvey, SurveyInvitation, SurveyStatus
from courses.selectors import survey_participation
from courses.surveys import surveys_send_due_reminders
from institutions.scoping import institution_scope
from institutions.services import institution_create

from .conftest import build_survey_world
from .survey_helpers import links_by_recipient, open_survey

pytestmark = pytest.mark.django_db

FMT = "%Y-%m-%d %H:%M"


def _form(world, **overrides):
    now = timezone.localtime(timezone.now(), timezone=datetime.UTC)
    data = {"term": world.term.pk, "title": "Week 6 check-in", "message": "Please tell us who needs help.",
            "opens_at": (now - datetime.timedelta(minutes=5)).strftime(FMT),
            "closes_at": (now + datetime.timedelta(days=10)).strftime(FMT),
            "concern_type_ids": [t.pk for t in world.types]}
    data.update(overrides)
    return data


@pytest.fixture
def utc_worlds(worlds):
    for world in worlds:
        world.institution.timezone = "UTC"
        world.institution.save(update_fields=["timezone"])
    return worlds


def _surveys(world):
    return ProgressSurvey.objects.for_institution(world.institution)


def test_the_preview_counts_instructors_sections_and_those_without_an_address_and_sends_nothing(client, utc_worlds):
    a, _b = utc_worlds
    client.force_login(a.tenant.admin)
    assert client.get("/i/alpha/surveys/new/").status_code == 200
    response = client.post("/i/alpha/surveys/new/", {**_form(a), "preview": "1"})
    page = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert "Nothing has been sent yet" in page
    assert "will email <strong>2 instructors</strong> teaching <strong>3 sections</strong> in Autumn 2026" in page
    assert "1 instructor has no email address and gets nothing" in page and "Teacher2 Alpha" in page
    assert not _surveys(a).exists() and mail.outbox == []


def test_confirming_opens_the_survey_records_who_and_emails_the_instructors(client, utc_worlds,
                                                                             django_capture_on_commit_callbacks):
    a, b = utc_worlds
    client.force_login(a.tenant.admin)
    preview = client.post("/i/alpha/surveys/new/", {**_form(a), "preview": "1"})
    fingerprint = preview.context["preview"].fingerprint
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/i/alpha/surveys/new/", {**_form(a), "confirm": "1", "fingerprint": fingerprint})
    survey = _surveys(a).get()
    assert response.status_code == 302 and response["Location"] == f"/i/alpha/surveys/{survey.pk}/"
    assert survey.opened_by == a.tenant.admin and survey.status == SurveyStatus.OPEN
    assert sorted(m.to[0] for m in mail.outbox) == ["teacher0@alpha.example.edu", "teacher1@alpha.example.edu"]
    assert not _surveys(b).exists()


def test_a_change_of_instructors_after_the_preview_sends_nothing_and_shows_the_new_preview(client, utc_worlds):
    a, _b = utc_worlds
    client.force_login(a.tenant.admin)
    fingerprint = client.post("/i/alpha/surveys/new/", {**_form(a), "preview": "1"}).context["preview"].fingerprint
    with institution_scope(a.institution):
        Instructor.objects.filter(pk=a.instructors[2].pk).update(email="late@alpha.example.edu")
    response = client.post("/i/alpha/surveys/new/", {**_form(a), "confirm": "1", "fingerprint": fingerprint})
    assert response.status_code == 409
    assert "changed since the preview, so nothing was sent" in response.content.decode()
    assert "<strong>3 instructors</strong>" in response.content.decode()
    assert not _surveys(a).exists() and mail.outbox == []


@pytest.mark.parametrize("overrides, message", [
    ({"closes_at": "2020-01-01 10:00"}, "The survey must close after it opens."),
    ({"opens_at": "2020-01-01 10:00", "closes_at": "2020-01-02 10:00"}, "That time has passed"),
    ({"closes_at": (timezone.now() + datetime.timedelta(days=90)).strftime(FMT)}, "at most 60 days"),
    ({"concern_type_ids": []}, "This field is required."),
    ({"title": "  "}, "This field is required."),
    ({"closes_at": "not a date"}, "Enter a valid date/time."),
    ({"term": "999999"}, "Select a valid choice."),
])
def test_a_survey_the_rules_refuse_gets_a_specific_message_and_nothing_happens(client, utc_worlds, overrides,
                                                                              message):
    a, _b = utc_worlds
    client.force_login(a.tenant.admin)
    response = client.post("/i/alpha/surveys/new/", {**_form(a, **overrides), "confirm": "1", "fingerprint": "x"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not _surveys(a).exists() and mail.outbox == []


def test_an_inactive_type_or_another_institutions_term_or_type_is_refused(client, utc_worlds):
    a, b = utc_worlds
    client.force_login(a.tenant.admin)
    for overrides in ({"term": b.term.pk}, {"concern_type_ids": [b.types[0].pk]}):
        response = client.post("/i/alpha/surveys/new/", {**_form(a, **overrides), "preview": "1"})
        assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    with institution_scope(a.institution):
        ConcernType.objects.filter(pk=a.types[0].pk).update(is_active=False)
    response = client.post("/i/alpha/surveys/new/", {**_form(a), "preview": "1"})
    assert response.status_code == 400
    assert not _surveys(a).exists() and not _surveys(b).exists()


def test_the_survey_page_shows_participation_per_instructor_and_course(client, utc_worlds):
    a, _b = utc_worlds
    survey = open_survey(a)
    links = links_by_recipient()
    own = client.get(links["teacher0@alpha.example.edu"], follow=True).context["sections"][0]["rows"]
    client.post(links["teacher0@alpha.example.edu"], {"section": a.sections[0].pk,
                                                      f"m:{own[0]['student'].pk}:{a.types[0].pk}": "on",
                                                      f"m:{own[1]['student'].pk}:{a.types[1].pk}": "on",
                                                      f"m:{own[2]['student'].pk}:{a.types[-1].pk}": "on"})
    client.force_login(a.tenant.admin)
    response = client.get(f"/i/alpha/surveys/{survey.pk}/")
    assert response.status_code == 200
    participation = response.context["participation"]
    assert participation.totals == {"invited": 2, "opened": 1, "answered": 1, "concerns": 2, "kudos": 1}
    rows = {row["instructor"].email: row for row in participation.instructors}
    assert rows["teacher0@alpha.example.edu"]["answered"] and not rows["teacher1@alpha.example.edu"]["opened"]
    courses = {c["course_code"]: c for c in participation.courses}
    assert courses["C0"]["concerns"] == 2 and courses["C0"]["kudos"] == 1 and courses["C0"]["answered"] == 1
    assert courses["C2"]["invited"] == 0 and courses["C2"]["instructor_count"] == 1  # no email address
    assert "C3" not in courses  # another term
    assert participation.not_invited == ["Teacher2 Alpha"]  # no email address
    assert "Send reminders to the 1 instructor who has not answered" in response.content.decode()
    assert client.get("/i/alpha/surveys/").status_code == 200


def _participation_queries(world, django_assert_num_queries):
    survey = open_survey(world)
    with institution_scope(world.institution), django_assert_num_queries(3):
        participation = survey_participation(institution=world.institution, survey=survey)
    return participation


def test_participation_takes_the_same_queries_at_two_sizes(tenants, django_assert_num_queries):
    a, b = tenants
    small = build_survey_world(a, instructors=2, students_per_section=2)
    large = build_survey_world(b, instructors=12, sections_per_instructor=3, students_per_section=5,
                               extra_students=30)
    assert len(_participation_queries(small, django_assert_num_queries).instructors) == 2
    assert len(_participation_queries(large, django_assert_num_queries).instructors) == 11


def test_the_instructors_roster_takes_the_same_queries_at_two_sizes(tenants, django_assert_num_queries):
    from courses.selectors import instructor_survey_roster

    a, b = tenants
    small = build_survey_world(a, instructors=2, students_per_section=2)
    large = build_survey_world(b, instructors=2, sections_per_instructor=4, students_per_section=25,
                               extra_students=40)
    for world, sections, students in ((small, 1, 2), (large, 4, 100)):
        open_survey(world)
        with institution_scope(world.institution):
            invitation = SurveyInvitation.objects.select_related("survey", "instructor", "institution").get(
                instructor=world.instructors[0])
            with django_assert_num_queries(3):
                roster = instructor_survey_roster(invitation=invitation)
        assert len(roster) == sections and sum(len(item.enrolments) for item in roster) == students


def test_reminders_go_only_to_those_who_have_not_answered_with_a_new_link(client, utc_worlds,
                                                                          django_capture_on_commit_callbacks):
    a, b = utc_worlds
    survey = open_survey(a)
    open_survey(b)
    first = dict(links_by_recipient(mail.outbox[:2]).items())
    client.post(first["teacher0@alpha.example.edu"], {"section": a.sections[0].pk})  # answered: nothing to mark
    mail.outbox.clear()
    client.force_login(a.tenant.admin)
    response = client.post(f"/i/alpha/surveys/{survey.pk}/remind/", {"expected": "2"}, follow=True)
    assert "1 instructor(s) have not answered now, not 2; nothing was sent" in response.content.decode()
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/i/alpha/surveys/{survey.pk}/remind/", {"expected": "1"}, follow=True)
    assert "Reminders are being emailed to 1 instructor who has not answered" in response.content.decode()
    assert [m.to for m in mail.outbox] == [["teacher1@alpha.example.edu"]]
    assert mail.outbox[0].subject.startswith("Reminder:")
    new_link = links_by_recipient()["teacher1@alpha.example.edu"]
    assert client.get(new_link, follow=True).status_code == 200
    assert client.get(first["teacher1@alpha.example.edu"], follow=True).status_code == 404  # replaced by the reminder
    invitation = SurveyInvitation.objects.for_institution(a.institution).get(instructor=a.instructors[1])
    assert invitation.reminders_sent == 1 and invitation.reminded_at is not None
    assert not SurveyInvitation.objects.for_institution(b.institution).filter(reminders_sent__gt=0).exists()


def test_closing_records_who_and_revokes_every_link(client, utc_worlds):
    a, _b = utc_worlds
    survey = open_survey(a)
    links = links_by_recipient()
    client.force_login(a.tenant.admin)
    response = client.post(f"/i/alpha/surveys/{survey.pk}/close/", follow=True)
    assert "link stopped working" in response.content.decode()
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.CLOSED and survey.closed_by == a.tenant.admin
    for link in links.values():
        assert client.get(link, follow=True).status_code == 410
    response = client.post(f"/i/alpha/surveys/{survey.pk}/remind/", {"expected": "2"}, follow=True)
    assert "only while the survey is open" in response.content.decode()


def test_admin_of_other_institution_gets_404_on_every_survey_page(client, utc_worlds):
    a, b = utc_worlds
    survey = open_survey(a)
    client.force_login(b.tenant.admin)
    for url in ("/i/alpha/surveys/", "/i/alpha/surveys/new/", "/i/alpha/surveys/concern-types/",
                f"/i/alpha/surveys/{survey.pk}/"):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/i/beta/surveys/{survey.pk}/").status_code == 404
    for verb in ("remind", "close"):
        assert client.post(f"/i/beta/surveys/{survey.pk}/{verb}/", {"expected": "2"}).status_code == 404
        assert client.post(f"/i/alpha/surveys/{survey.pk}/{verb}/", {"expected": "2"}).status_code == 404
    assert client.post("/i/beta/surveys/concern-types/", {"action": "toggle", "type": a.types[0].pk}).status_code == 404
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN
    assert ConcernType.objects.for_institution(a.institution).get(pk=a.types[0].pk).is_active
    assert "Mid-term check" not in client.get("/i/beta/surveys/").content.decode()


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_advisors_and_viewers_cannot_open_the_survey_pages(client, utc_worlds, role):
    a, _b = utc_worlds
    survey = open_survey(a)
    client.force_login(getattr(a.tenant, role))
    for url in ("/i/alpha/surveys/", "/i/alpha/surveys/new/", "/i/alpha/surveys/concern-types/",
                f"/i/alpha/surveys/{survey.pk}/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/i/alpha/surveys/{survey.pk}/close/").status_code == 403
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN


def test_concern_types_can_be_added_renamed_deactivated_and_reordered(client, utc_worlds):
    a, b = utc_worlds
    client.force_login(a.tenant.admin)
    url = "/i/alpha/surveys/concern-types/"
    assert client.get(url).status_code == 200

    def labels(world):
        return list(ConcernType.objects.for_institution(world.institution).order_by("position", "label", "id")
                    .values_list("label", flat=True))

    client.post(url, {"action": "add", "label": "Wellbeing", "kind": "concern"})
    assert labels(a)[-1] == "Wellbeing"
    wellbeing = ConcernType.objects.for_institution(a.institution).get(label="Wellbeing")
    assert wellbeing.key == "wellbeing"
    client.post(url, {"action": "up", "type": wellbeing.pk})
    assert labels(a)[-2:] == ["Wellbeing", "Kudos: doing well"]
    client.post(url, {"action": "rename", "type": wellbeing.pk, "label": "Wellbeing or stress"})
    client.post(url, {"action": "toggle", "type": a.types[0].pk})
    assert not ConcernType.objects.for_institution(a.institution).get(pk=a.types[0].pk).is_active
    assert "Wellbeing or stress" in labels(a)
    response = client.post(url, {"action": "rename", "type": wellbeing.pk, "label": "   "}, follow=True)
    assert "Nothing changed" in response.content.decode()
    assert client.post(url, {"action": "toggle", "type": b.types[0].pk}).status_code == 404
    assert client.post(url, {"action": "toggle", "type": "abc"}).status_code == 404
    assert labels(b) == ["Attendance", "Low grades", "Missing work", "Participation", "Kudos: doing well"]
    assert ConcernType.objects.for_institution(b.institution).filter(is_active=True).count() == 5


def test_a_new_institution_gets_the_default_concern_types():
    created = institution_create(slug="gamma", name="Gamma College")
    other = institution_create(slug="delta", name="Delta College")
    for institution in (created, other):
        types = ConcernType.objects.for_institution(institution)
        assert list(types.order_by("position").values_list("key", "kind")) == [
            ("attendance", "concern"), ("low_grades", "concern"), ("missing_work", "concern"),
            ("participation", "concern"), ("kudos", "kudos")]


def test_the_automatic_reminder_goes_once_to_those_who_have_not_answered_in_that_institution_only(
        client, utc_worlds, django_capture_on_commit_callbacks):
    a, b = utc_worlds
    soon = timezone.now() + datetime.timedelta(hours=1)
    survey = open_survey(a, auto_remind_at=soon)
    survey_b = open_survey(b, auto_remind_at=soon + datetime.timedelta(days=1))
    first = links_by_recipient()
    client.post(first["teacher0@alpha.example.edu"], {"section": a.sections[0].pk})  # answered
    mail.outbox.clear()
    assert surveys_send_due_reminders() == 0  # not yet due
    later = soon + datetime.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert surveys_send_due_reminders(now=later) == 1
    assert [m.to for m in mail.outbox] == [["teacher1@alpha.example.edu"]]
    assert surveys_send_due_reminders(now=later) == 0  # once only
    survey.refresh_from_db()
    survey_b.refresh_from_db()
    assert survey.auto_reminded_at == later and survey.last_reminded_by is None
    assert survey_b.auto_reminded_at is None
    client.force_login(a.tenant.admin)
    assert "(sent)" in client.get(f"/i/alpha/surveys/{survey.pk}/").content.decode()


def test_an_automatic_reminder_outside_the_window_is_refused(client, utc_worlds):
    a, _b = utc_worlds
    client.force_login(a.tenant.admin)
    response = client.post("/i/alpha/surveys/new/", {**_form(a, auto_remind_at="2020-01-01 10:00"), "preview": "1"})
    assert response.status_code == 400
    assert "The automatic reminder goes while the survey is open" in response.content.decode()
    assert not _surveys(a).exists()


def test_reminders_by_hand_record_who_sent_them(client, utc_worlds, django_capture_on_commit_callbacks):
    a, _b = utc_worlds
    survey = open_survey(a)
    client.force_login(a.tenant.admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/i/alpha/surveys/{survey.pk}/remind/", {"expected": "2"})
    survey.refresh_from_db()
    assert survey.last_reminded_by == a.tenant.admin and survey.last_reminded_at is not None
    assert "by alpha-admin" in client.get(f"/i/alpha/surveys/{survey.pk}/").content.decode()


def test_a_multiline_message_survives_the_preview_and_is_what_instructors_read(
        client, utc_worlds, django_capture_on_commit_callbacks):
    a, _b = utc_worlds
    client.force_login(a.tenant.admin)
    message = "Line one.\nLine two: <b>not bold</b> & more."
    preview = client.post("/i/alpha/surveys/new/", {**_form(a, message=message), "preview": "1"})
    page = preview.content.decode()
    assert "Line one.\nLine two: &lt;b&gt;not bold&lt;/b&gt; &amp; more.</textarea>" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/i/alpha/surveys/new/", {**_form(a, message=message), "confirm": "1",
                                              "fingerprint": preview.context["preview"].fingerprint})
    assert _surveys(a).get().message == message
    assert message in mail.outbox[0].body


def test_the_data_migration_gives_existing_institutions_without_types_the_defaults_and_leaves_the_others(
        tenants):
    import importlib

    from django.apps import apps

    a, b = tenants
    migration = importlib.import_module("courses.migrations.0004_default_concern_types_for_existing_institutions")
    ConcernType.objects.for_institution(b.institution).create(key="own", label="Our own", position=0)
    migration.create_default_concern_types(apps, None)
    assert ConcernType.objects.for_institution(a.institution).count() == 5
    assert list(ConcernType.objects.for_institution(b.institution).values_list("key", flat=True)) == ["own"]
