"""The alert pages: worklists, the alert page and its actions, raising from the profile, offices and routing
rules; tenancy, roles and need-to-know on each."""

import pytest
from django.core import mail
from django.urls import reverse

from institutions.services import institution_set_need_to_know
from interventions import alerts
from interventions.models import Alert, AlertEvent, AlertRule, AlertStatus, Office, OfficeMember, RouteTarget
from students.models import Student

from .alerts_fixtures import save_marks

pytestmark = pytest.mark.django_db


@pytest.fixture
def raised(alert_world):
    """In each institution: an alert for students[0] routed to the advisor, one for students[3] routed to
    the office, one unassigned (students[1] has no advisor), and kudos for students[0]."""
    for t in alert_world:
        alerts.alert_rule_save(institution=t.institution, rule=None,
                               data={"concern_type": t.grades.pk, "target": RouteTarget.OFFICE,
                                     "office": t.office.pk})
        save_marks(t, create=[(t.students[0], t.attendance, f"{t.institution.slug} absent"),
                              (t.students[3], t.grades, f"{t.institution.slug} failing"),
                              (t.students[1], t.attendance, f"{t.institution.slug} missing"),
                              (t.students[0], t.kudos, f"{t.institution.slug} great lab work")])
        found = Alert.objects.for_institution(t.institution)
        t.mine = found.get(student=t.students[0])
        t.office_alert = found.get(student=t.students[3])
        t.unassigned = found.get(student=t.students[1])
        t.rule = AlertRule.objects.for_institution(t.institution).get()
    return alert_world


def get_pages(slug, t):
    return [
        reverse("alert-list", args=[slug]), reverse("alert-unassigned", args=[slug]), reverse("alert-all", args=[slug]),
        reverse("alert-detail", args=[slug, t.mine.pk]), reverse("office-alerts", args=[slug, t.office.pk]),
        reverse("office-list", args=[slug]), reverse("office-detail", args=[slug, t.office.pk]),
        reverse("alert-rules", args=[slug]),
    ]


def post_pages(slug, t):
    detail = reverse("alert-detail", args=[slug, t.mine.pk])
    return [
        (detail, {"action": "acknowledge"}),
        (detail, {"action": "close", "close-outcome": "resolved"}),
        (detail, {"action": "note", "note-note": "x"}),
        (reverse("alert-raise", args=[slug, t.students[0].pk]), {"concern_type": t.attendance.pk, "comment": "x"}),
        (reverse("office-list", args=[slug]), {"name": "Intruders"}),
        (reverse("office-detail", args=[slug, t.office.pk]), {"action": "toggle"}),
        (reverse("alert-rules", args=[slug]), {"action": "delete", "rule": t.rule.pk}),
    ]


def test_alpha_members_get_404_on_every_beta_alert_page_and_change_nothing(client, raised):
    a, b = raised
    for role in ("admin", "advisor", "viewer", "tutor"):
        client.force_login(getattr(a, role))
        missing = client.get("/i/no-such-institution/alerts/")
        for url in get_pages("beta", b):
            response = client.get(url)
            assert response.status_code == 404, (role, url)
            assert response.content == missing.content
        for url, data in post_pages("beta", b):
            assert client.post(url, data).status_code == 404, (role, url)
    b.mine.refresh_from_db()
    assert b.mine.status == AlertStatus.OPEN
    assert Office.objects.for_institution(b.institution).get().is_active
    assert AlertRule.objects.for_institution(b.institution).count() == 1
    assert Alert.objects.for_institution(b.institution).count() == 3


def test_alpha_ids_inside_alpha_urls_do_not_reach_beta_rows(client, raised):
    a, b = raised
    client.force_login(a.admin)
    assert client.get(reverse("alert-detail", args=["alpha", b.mine.pk])).status_code == 404
    assert client.get(reverse("office-detail", args=["alpha", b.office.pk])).status_code == 404
    assert client.get(reverse("office-alerts", args=["alpha", b.office.pk])).status_code == 404
    response = client.post(reverse("alert-rules", args=["alpha"]), {"action": "delete", "rule": b.rule.pk})
    assert response.status_code == 404
    response = client.post(reverse("alert-raise", args=["alpha", b.students[0].pk]),
                           {"concern_type": a.attendance.pk, "comment": "x"})
    assert response.status_code == 404
    assert AlertRule.objects.for_institution(b.institution).count() == 1


def test_my_alerts_lists_mine_new_first_and_filters(client, raised):
    a, _b = raised
    client.force_login(a.advisor)
    page = client.get(reverse("alert-list", args=["alpha"]))
    assert page.status_code == 200
    assert list(page.context["alerts"]) == [a.mine]
    assert b"alpha absent" not in page.content  # the list shows the concern, the comment is on the alert
    assert a.students[0].display_name.encode() in page.content and b"beta" not in page.content
    assert list(client.get(reverse("alert-list", args=["alpha"]), {"type": a.grades.pk}).context["alerts"]) == []
    assert client.get(reverse("alert-list", args=["alpha"]), {"status": "nonsense", "type": "x"}).status_code == 200
    client.force_login(a.tutor)
    assert list(client.get(reverse("alert-list", args=["alpha"])).context["alerts"]) == [a.office_alert]
    assert list(client.get(reverse("office-alerts", args=["alpha", a.office.pk])).context["alerts"]) == [
        a.office_alert]
    client.force_login(a.other_advisor)
    assert client.get(reverse("office-alerts", args=["alpha", a.office.pk])).status_code == 403


def test_unassigned_and_all_queues_are_for_administrators(client, raised):
    a, _b = raised
    client.force_login(a.admin)
    assert list(client.get(reverse("alert-unassigned", args=["alpha"])).context["alerts"]) == [a.unassigned]
    every = client.get(reverse("alert-all", args=["alpha"]))
    assert set(every.context["alerts"]) == {a.mine, a.office_alert, a.unassigned} and b"beta" not in every.content
    client.force_login(a.advisor)
    assert client.get(reverse("alert-unassigned", args=["alpha"])).status_code == 403
    assert client.get(reverse("alert-all", args=["alpha"])).status_code == 403
    client.force_login(a.viewer)
    assert client.get(reverse("alert-list", args=["alpha"])).status_code == 403
    assert client.get(reverse("alert-detail", args=["alpha", a.mine.pk])).status_code == 403


def test_the_assignee_works_the_alert_through_the_page(client, raised, django_capture_on_commit_callbacks):
    a, _b = raised
    client.force_login(a.advisor)
    url = reverse("alert-detail", args=["alpha", a.mine.pk])
    page = client.get(url)
    assert page.status_code == 200 and page.context["can_act"]
    assert b"alpha absent" in page.content and b"Acknowledge" in page.content
    assert client.post(url, {"action": "acknowledge", "ack-note": "On it"}).status_code == 302
    assert client.post(url, {"action": "contact", "contact-note": "Emailed"}).status_code == 302
    # Bad input: a specific message, nothing written.
    refused = client.post(url, {"action": "contact", "contact-note": ""})
    assert refused.status_code == 400 and b"This field is required" in refused.content
    refused = client.post(url, {"action": "close", "close-outcome": ""})
    assert refused.status_code == 400
    refused = client.post(url, {"action": "refer"})
    assert refused.status_code == 400 and b"refer to either a person or an office" in refused.content
    assert client.post(url, {"action": "bogus"}).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "close", "close-outcome": "resolved", "close-notes": "Fine now"},
                               follow=True)
    assert b"Alert closed" in response.content
    a.mine.refresh_from_db()
    assert a.mine.status == AlertStatus.CLOSED and a.mine.outcome == "resolved"
    kinds = list(AlertEvent.objects.for_institution(a.institution).filter(alert=a.mine)
                 .values_list("kind", "actor_id"))
    assert kinds[2:] == [("acknowledged", a.advisor.pk), ("contacted", a.advisor.pk), ("closed", a.advisor.pk),
                         ("raiser_told", None)]
    (message,) = mail.outbox
    assert message.to == ["ines@alpha.example.edu"] and "Fine now" not in message.body


def test_refer_to_an_office_moves_the_alert(client, raised):
    a, b = raised
    client.force_login(a.advisor)
    url = reverse("alert-detail", args=["alpha", a.mine.pk])
    refused = client.post(url, {"action": "refer", "refer-to_office": b.office.pk})
    assert refused.status_code == 400  # not one of the choices
    response = client.post(url, {"action": "refer", "refer-to_office": a.office.pk, "refer-note": "Tutoring"})
    assert response.status_code == 302
    a.mine.refresh_from_db()
    assert a.mine.assigned_office == a.office and a.mine.assigned_user is None
    # The advisor no longer works it; the office member does.
    assert client.post(url, {"action": "acknowledge"}).status_code == 400
    client.force_login(a.tutor)
    assert client.post(url, {"action": "acknowledge"}).status_code == 302


def test_someone_else_sees_but_cannot_act(client, raised):
    a, _b = raised
    client.force_login(a.other_advisor)
    url = reverse("alert-detail", args=["alpha", a.mine.pk])
    page = client.get(url)
    assert page.status_code == 200 and not page.context["can_act"] and b"Acknowledge" not in page.content
    refused = client.post(url, {"action": "acknowledge"})
    assert refused.status_code == 400 and b"only whoever it is assigned to" in refused.content
    a.mine.refresh_from_db()
    assert a.mine.status == AlertStatus.OPEN


def test_need_to_know_hides_alerts_of_unseen_students_but_shows_routed_ones(client, raised):
    a, _b = raised
    institution_set_need_to_know(institution=a.institution, enabled=True, actor=a.admin)
    client.force_login(a.other_advisor)
    assert client.get(reverse("alert-detail", args=["alpha", a.mine.pk])).status_code == 404
    assert client.post(reverse("alert-detail", args=["alpha", a.mine.pk]), {"action": "note",
                                                                           "note-note": "x"}).status_code == 404
    client.force_login(a.tutor)  # the office's member sees the student of the office's open alert
    assert client.get(reverse("alert-detail", args=["alpha", a.office_alert.pk])).status_code == 200
    assert client.get(reverse("student-detail", args=["alpha", a.students[3].pk])).status_code == 200
    assert client.get(reverse("alert-detail", args=["alpha", a.mine.pk])).status_code == 404
    # Closed, the student leaves the tutor's sight again; the page sends them back to their list.
    response = client.post(reverse("alert-detail", args=["alpha", a.office_alert.pk]),
                           {"action": "close", "close-outcome": "resolved"})
    assert response.status_code == 302 and response.url == reverse("alert-list", args=["alpha"])
    assert client.get(reverse("student-detail", args=["alpha", a.students[3].pk])).status_code == 404


def test_the_profile_shows_alerts_and_kudos_and_raises_one(client, raised):
    a, _b = raised
    client.force_login(a.advisor)
    profile = client.get(reverse("student-detail", args=["alpha", a.students[0].pk]))
    assert b"Alerts and kudos" in profile.content and b"alpha great lab work" in profile.content
    assert reverse("alert-detail", args=["alpha", a.mine.pk]).encode() in profile.content
    response = client.post(reverse("alert-raise", args=["alpha", a.students[0].pk]),
                           {"concern_type": a.grades.pk, "comment": "Struggling in my seminar"}, follow=True)
    assert b"Alert raised and sent to Tutoring centre" in response.content
    staff = Alert.objects.for_institution(a.institution).get(comment="Struggling in my seminar")
    assert staff.raised_by_user == a.advisor and staff.assigned_office == a.office
    response = client.post(reverse("alert-raise", args=["alpha", a.students[0].pk]),
                           {"concern_type": a.kudos.pk, "comment": "x"}, follow=True)
    assert b"Choose a concern" in response.content
    client.force_login(a.viewer)
    assert client.post(reverse("alert-raise", args=["alpha", a.students[0].pk]),
                       {"concern_type": a.grades.pk, "comment": "x"}).status_code == 403


def test_administrators_keep_offices_and_members(client, raised):
    a, b = raised
    client.force_login(a.admin)
    assert client.get(reverse("office-list", args=["alpha"])).status_code == 200
    response = client.post(reverse("office-list", args=["alpha"]), {"name": "Financial aid"})
    office = Office.objects.for_institution(a.institution).get(name="Financial aid")
    assert response.url == reverse("office-detail", args=["alpha", office.pk])
    assert client.post(reverse("office-list", args=["alpha"]), {"name": "financial AID"}).status_code == 400
    url = reverse("office-detail", args=["alpha", office.pk])
    assert client.post(url, {"action": "add_member", "user": b.advisor.pk}).status_code == 400
    assert client.post(url, {"action": "add_member", "user": a.other_advisor.pk}).status_code == 302
    assert list(OfficeMember.objects.for_institution(a.institution).filter(office=office)
                .values_list("user_id", flat=True)) == [a.other_advisor.pk]
    assert client.post(url, {"action": "remove_member", "user": a.tutor.pk}).status_code == 400
    assert client.post(url, {"action": "remove_member", "user": a.other_advisor.pk}).status_code == 302
    assert client.post(url, {"action": "toggle"}).status_code == 302
    office.refresh_from_db()
    assert not office.is_active
    client.force_login(a.advisor)
    assert client.get(reverse("office-list", args=["alpha"])).status_code == 403
    assert client.post(reverse("office-list", args=["alpha"]), {"name": "Mine"}).status_code == 403


def test_administrators_keep_rules_and_preview_them(client, raised):
    a, b = raised
    client.force_login(a.admin)
    url = reverse("alert-rules", args=["alpha"])
    assert client.post(url, {"action": "add", "target": "office", "office": b.office.pk}).status_code == 400
    assert client.post(url, {"action": "add", "target": "user", "user": ""}).status_code == 400
    assert client.post(url, {"action": "add", "target": "user", "user": a.other_advisor.pk,
                             "program": "Nursing"}).status_code == 302
    rules = list(AlertRule.objects.for_institution(a.institution).order_by("position"))
    assert [r.target for r in rules] == ["office", "user"]
    assert client.post(url, {"action": "up", "rule": rules[1].pk}).status_code == 302
    preview = client.get(url, {"preview": "1", "student": a.students[2].external_id,
                               "concern_type": a.grades.pk})
    assert preview.status_code == 200 and preview.context["preview"].user == a.other_advisor
    assert Alert.objects.for_institution(a.institution).count() == 3  # the preview saved nothing
    missing = client.get(url, {"preview": "1", "student": "nobody", "concern_type": a.grades.pk})
    assert b"No student with this id" in missing.content
    assert client.post(url, {"action": "toggle", "rule": rules[0].pk}).status_code == 302
    assert client.post(url, {"action": "delete", "rule": "abc"}).status_code == 404
    client.force_login(a.advisor)
    assert client.get(url).status_code == 403
    assert Student.objects.for_institution(b.institution).count() == 6


def test_the_worklists_mark_students_with_an_open_alert(client, raised):
    a, _b = raised
    client.force_login(a.advisor)
    caseload = client.get(reverse("caseload", args=["alpha"]))
    rows = {s.pk: s.has_open_alert for s in caseload.context["students"]}
    assert rows[a.students[0].pk] is True and rows[a.students[4].pk] is False
    assert b'title="An alert about this student is open"' in caseload.content


def test_alert_reads_are_in_the_access_log_on_pages_and_the_api(client, api_client, raised):
    from audit.models import AccessAction, AccessEntry

    a, b = raised
    client.force_login(a.advisor)
    assert client.get(reverse("alert-list", args=["alpha"])).status_code == 200
    assert client.get(reverse("alert-detail", args=["alpha", a.mine.pk])).status_code == 200
    assert client.get(reverse("alert-detail", args=["alpha", b.mine.pk])).status_code == 404  # records nothing
    api_client.force_authenticate(a.advisor)
    assert api_client.get(reverse("api-alert-list", args=["alpha"])).status_code == 200
    assert api_client.get(reverse("api-alert-detail", args=["alpha", a.mine.pk])).status_code == 200
    entries = list(AccessEntry.objects.for_institution(a.institution).order_by("id").values_list(
        "action", "student_id", "object_id", "result_count"))
    assert entries == [
        (AccessAction.ALERT_LIST, None, None, 1), (AccessAction.ALERT_VIEW, a.students[0].pk, a.mine.pk, None),
        (AccessAction.API_ALERT_LIST, None, None, 3), (AccessAction.API_ALERT_READ, a.students[0].pk, a.mine.pk, None),
    ]
    assert AccessEntry.objects.for_institution(b.institution).count() == 0


@pytest.mark.parametrize("value", ["a\x00b", "-1", "0", str(10**400), "99999999999999999999", "' OR 1=1 --"])
def test_hostile_alert_query_strings_answer_without_a_server_error(client, raised, value):
    a, _b = raised
    client.force_login(a.admin)
    for name in ("alert-list", "alert-all", "alert-unassigned"):
        assert client.get(reverse(name, args=["alpha"]), {"type": value, "status": value,
                                                          "page": value}).status_code in (200, 404)
    response = client.get(reverse("alert-rules", args=["alpha"]),
                          {"preview": "1", "student": value, "concern_type": value})
    assert response.status_code == 200


def test_the_caseload_says_how_many_alerts_wait(client, raised):
    a, _b = raised
    client.force_login(a.advisor)
    assert client.get(reverse("caseload", args=["alpha"])).context["waiting_alerts"] == 1
    client.force_login(a.tutor)
    page = client.get(reverse("caseload", args=["alpha"]))
    assert page.context["waiting_alerts"] == 1 and b"1 alert waiting for you or your offices" in page.content
    client.force_login(a.other_advisor)
    assert b"waiting-alerts" not in client.get(reverse("caseload", args=["alpha"])).content
