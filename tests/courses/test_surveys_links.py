"""The instructor's emailed link: it opens only their own sections of the survey's term, only
inside the window, and nothing once expired, revoked, closed, tampered with or pointed at another
institution; saving marks creates, updates and removes them and tells the apps above."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from courses.models import Enrolment, ProgressSurvey, SurveyInvitation, SurveyMark, SurveyStatus
from courses.signals import survey_marks_saved
from courses.surveys import survey_close, survey_token_hash, surveys_close_ended
from institutions.scoping import institution_scope

from .survey_helpers import links_by_recipient, open_survey

pytestmark = pytest.mark.django_db


@pytest.fixture
def opened(worlds, settings):
    settings.SITE_URL = "https://risk.example.edu"
    a, b = worlds
    survey_a = open_survey(a)
    links_a = links_by_recipient()
    mail.outbox.clear()
    survey_b = open_survey(b)
    links_b = links_by_recipient()
    mail.outbox.clear()
    return a, b, survey_a, survey_b, links_a, links_b


def _email(world, i):
    return world.instructors[i].email


def _invitation(world, i):
    return SurveyInvitation.objects.for_institution(world.institution).get(instructor=world.instructors[i])


def _enrolled(world, section):
    return [e.student for e in Enrolment.objects.for_institution(world.institution).filter(section=section)
            .select_related("student").order_by("id")]


def _marks(world):
    return SurveyMark.objects.for_institution(world.institution)


def test_each_instructor_with_an_address_gets_one_link_built_from_the_site_url_and_only_its_hash_is_stored(
        worlds, settings):
    settings.SITE_URL = "https://risk.example.edu"
    a, b = worlds
    open_survey(a)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([_email(a, 0), _email(a, 1)])
    for message in mail.outbox:
        assert "https://risk.example.edu/survey/" in message.body and "Mid-term check" in message.subject
    token = links_by_recipient()[_email(a, 0)].split("/")[2]
    invitation = _invitation(a, 0)
    assert invitation.token_hash == survey_token_hash(token) and token not in invitation.token_hash
    assert token.split(".")[1] not in str(SurveyInvitation.objects.for_institution(a.institution).values_list())
    assert not SurveyInvitation.objects.for_institution(b.institution).exists()


def test_the_link_opens_only_the_instructors_own_sections_of_the_term_without_an_account(client, opened):
    a, _b, _survey, _sb, links, _lb = opened
    response = client.get(links[_email(a, 0)], follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and response["Referrer-Policy"] == "same-origin"
    assert "Course 0, section 1" in page and "Course 1, section 1" not in page and "Course 3" not in page
    own = {s.external_id for s in _enrolled(a, a.sections[0])}
    for student in a.tenant.students:
        if student.external_id in own:
            assert f"· {student.external_id}" in page
    assert "Attendance" in page and "Kudos: doing well" in page
    assert _invitation(a, 0).first_opened_at is not None and _invitation(a, 1).first_opened_at is None
    assert "BETA" not in page


def _answer(client, link, section, marks, comments=None, **extra):
    data = {"section": section.pk, **{f"m:{s}:{t}": "on" for s, t in marks},
            **{f"c:{s}": text for s, text in (comments or {}).items()}, **extra}
    return client.post(link, data)


def test_saving_creates_updates_and_removes_marks_and_sends_the_signal_in_the_transaction(client, opened):
    a, b, _survey, _sb, links, _lb = opened
    link, section = links[_email(a, 0)], a.sections[0]
    students = _enrolled(a, section)
    attendance, kudos = a.types[0], a.types[-1]
    received = []

    def receiver(sender, *, institution, invitation, created, updated, removed, **kwargs):
        from django.db import connection
        received.append((institution, invitation.pk, [m.pk for m in created], [m.pk for m in updated], removed,
                         connection.in_atomic_block))

    survey_marks_saved.connect(receiver, dispatch_uid="test-receiver")
    try:
        response = _answer(client, link, section, [(students[0].pk, attendance.pk), (students[1].pk, kudos.pk)],
                           {students[0].pk: "Missed three classes"})
        assert response.status_code == 302
        marks = _marks(a)
        assert marks.count() == 2
        assert marks.get(student=students[0]).comment == "Missed three classes"
        first = received[-1]
        assert first[0] == a.institution and len(first[2]) == 2 and first[3] == [] and first[4] == [] and first[5]
        invitation = _invitation(a, 0)
        assert invitation.answered_at is not None
        # The comment changes, kudos is taken back.
        _answer(client, link, section, [(students[0].pk, attendance.pk)], {students[0].pk: "Missed four classes"})
        assert marks.count() == 1 and marks.get().comment == "Missed four classes"
        last = received[-1]
        assert last[2] == [] and len(last[3]) == 1 and len(last[4]) == 1
    finally:
        survey_marks_saved.disconnect(dispatch_uid="test-receiver")
    assert not _marks(b).exists()
    page = client.get(link, follow=True).content.decode()
    assert "Missed four classes" in page and "checked" in page


@pytest.mark.parametrize("case", ["foreign_student", "other_section_student", "other_instructors_section",
                                  "b_section", "unknown_type", "long_comment", "unknown_field", "lonely_comment",
                                  "too_many_fields", "no_section"])
def test_a_post_the_page_did_not_produce_gets_a_message_and_changes_nothing(client, opened, case):
    a, b, _survey, _sb, links, _lb = opened
    link, section = links[_email(a, 0)], a.sections[0]
    roster = _enrolled(a, section)
    own = roster[0]
    outsider = next(s for s in a.tenant.students if s not in roster)
    attendance = a.types[0]
    data = {"section": section.pk, f"m:{own.pk}:{attendance.pk}": "on"}
    if case == "foreign_student":
        data[f"m:{b.tenant.students[0].pk}:{attendance.pk}"] = "on"
    elif case == "other_section_student":
        data[f"m:{outsider.pk}:{attendance.pk}"] = "on"
    elif case == "other_instructors_section":
        data["section"] = a.sections[1].pk
    elif case == "b_section":
        data["section"] = b.sections[0].pk
    elif case == "unknown_type":
        data[f"m:{own.pk}:{b.types[0].pk}"] = "on"
    elif case == "long_comment":
        data[f"c:{own.pk}"] = "x" * 1001
    elif case == "unknown_field":
        data["m:abc"] = "on"
    elif case == "lonely_comment":
        data[f"c:{roster[-1].pk}"] = "Only a comment"
    elif case == "too_many_fields":
        data.update({f"c:{own.pk}{n}": "" for n in range(200)})
    elif case == "no_section":
        data["section"] = "x"
    response = client.post(link, data)
    assert response.status_code == 400
    assert "nothing was saved" in response.content.decode()
    assert not _marks(a).exists() and not _marks(b).exists()
    assert _invitation(a, 0).answered_at is None


def test_a_tampered_token_or_another_institutions_id_in_front_of_it_opens_nothing(client, opened):
    a, b, _survey, _sb, links, links_b = opened
    link = links[_email(a, 0)]
    token = link.split("/")[2]
    head, secret = token.split(".")
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in (f"{head}.{flipped}", f"{b.institution.pk}.{secret}", secret, f"{head}.", "x.y", "9" * 30 + "." + secret,
                f"{head}.{secret}extra"):
        response = client.get(f"/survey/{bad}/")
        assert response.status_code == 404, bad
        assert "This survey link does not work" in response.content.decode()
        assert client.post(f"/survey/{bad}/", {"section": a.sections[0].pk}).status_code == 404
    # B's own link opens B's roster only.
    page = client.get(links_b[_email(b, 0)], follow=True).content.decode()
    assert "BETA University" in page and "ALPHA University" not in page


def test_a_link_outside_the_window_or_of_a_closed_survey_is_refused_with_a_clear_page(client, opened):
    a, b, survey, _survey_b, links, links_b = opened
    link = links[_email(a, 0)]
    with institution_scope(a.institution):
        ProgressSurvey.objects.filter(pk=survey.pk).update(opens_at=timezone.now() + datetime.timedelta(hours=1))
    response = client.get(link, follow=True)
    assert response.status_code == 403 and "not open yet" in response.content.decode()
    with institution_scope(a.institution):
        ProgressSurvey.objects.filter(pk=survey.pk).update(opens_at=timezone.now() - datetime.timedelta(days=9),
                                                           closes_at=timezone.now() - datetime.timedelta(minutes=1))
    response = client.get(link, follow=True)
    assert response.status_code == 410 and "This survey has closed" in response.content.decode()
    assert _answer(client, link, a.sections[0], []).status_code == 410
    # The beat task closes it and revokes every link; B's survey stays open.
    assert surveys_close_ended() == 1
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.CLOSED and survey.closed_by is None
    assert not SurveyInvitation.objects.for_institution(a.institution).filter(revoked_at__isnull=True).exists()
    assert client.get(links_b[_email(b, 0)], follow=True).status_code == 200
    assert SurveyInvitation.objects.for_institution(b.institution).filter(revoked_at__isnull=True).count() == 2


def test_closing_by_hand_and_revoking_one_link_refuse_the_links(client, opened):
    a, b, survey, _sb, links, links_b = opened
    with institution_scope(a.institution):
        SurveyInvitation.objects.filter(instructor=a.instructors[1]).update(revoked_at=timezone.now())
    response = client.get(links[_email(a, 1)], follow=True)
    assert response.status_code == 410 and "no longer works" in response.content.decode()
    assert client.get(links[_email(a, 0)], follow=True).status_code == 200
    with institution_scope(a.institution):
        survey_close(institution=a.institution, survey=survey, user=a.tenant.admin)
    assert client.get(links[_email(a, 0)], follow=True).status_code == 410
    assert _answer(client, links[_email(a, 0)], a.sections[0], []).status_code == 410
    assert client.get(links_b[_email(b, 1)], follow=True).status_code == 200


def test_the_link_moves_its_secret_out_of_the_address_into_the_browsers_session(client, opened):
    from django.test import Client

    a, b, _sa, _sb, links, links_b = opened
    link = links[_email(a, 0)]
    token = link.split("/")[2]
    invitation = _invitation(a, 0)
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"] == f"/survey/answer/{invitation.pk}/" and token not in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200 and token not in page.content.decode()
    assert page["Referrer-Policy"] == "same-origin"
    section = a.sections[0]
    student = _enrolled(a, section)[0]
    saved = client.post(response["Location"], {"section": section.pk, f"m:{student.pk}:{a.types[0].pk}": "on"})
    assert saved.status_code == 302 and saved["Location"].startswith(f"/survey/answer/{invitation.pk}/")
    assert _marks(a).count() == 1
    # Another browser without the link, or this session pointed at someone else's invitation, gets nothing.
    stranger = Client()
    for method in (stranger.get, stranger.post):
        refused = method(f"/survey/answer/{invitation.pk}/")
        assert refused.status_code == 403 and "Open the link from your email again" in refused.content.decode()
    other = _invitation(a, 1)
    b_invitation = SurveyInvitation.objects.for_institution(b.institution).get(instructor=b.instructors[0])
    for target in (other.pk, b_invitation.pk):
        assert client.get(f"/survey/answer/{target}/").status_code == 403
        session = client.session
        session[f"survey-link-{target}"] = token  # a session made to name another invitation
        session.save()
        assert client.get(f"/survey/answer/{target}/").status_code == 404
        assert client.post(f"/survey/answer/{target}/", {"section": section.pk}).status_code == 404
    assert _marks(a).count() == 1 and not _marks(b).exists()
    # Closing the survey closes the session's page too.
    with institution_scope(a.institution):
        survey_close(institution=a.institution, survey=invitation.survey, user=a.tenant.admin)
    assert client.get(f"/survey/answer/{invitation.pk}/").status_code == 410
    assert client.get(links_b[_email(b, 0)], follow=True).status_code == 200


def test_a_mark_about_a_student_who_left_the_section_stays_when_the_section_is_saved_again(client, opened):
    a, _b, _sa, _sb, links, _lb = opened
    link, section = links[_email(a, 0)], a.sections[0]
    leaver, stayer = _enrolled(a, section)[:2]
    _answer(client, link, section, [(leaver.pk, a.types[0].pk), (stayer.pk, a.types[0].pk)])
    with institution_scope(a.institution):
        Enrolment.objects.filter(section=section, student=leaver).delete()
    assert _answer(client, link, section, []).status_code == 302  # the stayer's mark taken back
    assert list(_marks(a).values_list("student_id", flat=True)) == [leaver.pk]


def test_the_instructors_roster_read_is_in_the_access_log_of_that_institution_only(client, opened):
    from audit.models import AccessAction, AccessEntry

    a, b, survey, _sb, links, _lb = opened
    client.get(links[_email(a, 0)], follow=True)
    entry = AccessEntry.objects.for_institution(a.institution).get(action=AccessAction.SURVEY_ROSTER)
    invitation = _invitation(a, 0)
    assert entry.object_id == invitation.pk and entry.result_count == 3 and entry.actor_user_id is None
    assert entry.actor_name == "Instructor Teacher0 Alpha (survey link)"
    assert entry.filters == {"survey": survey.pk, "instructor": a.instructors[0].pk}
    assert not AccessEntry.objects.for_institution(b.institution).filter(action=AccessAction.SURVEY_ROSTER).exists()
    client.get("/survey/1.no-such-link-xxxxxxxxxxxxxxxxxxxxxxxx/")
    assert AccessEntry.objects.for_institution(a.institution).filter(action=AccessAction.SURVEY_ROSTER).count() == 1
