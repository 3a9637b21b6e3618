"""The close-the-loop email through a real SMTP server, and a student's erasure taking their alerts along."""

import pytest
from django.urls import reverse

from interventions.models import Alert, AlertEvent
from privacy.erasure import erasure_plan, student_erase
from tests.accounts.test_email_flows import Mailbox, _free_port, queue_through_the_task

from .alerts_fixtures import save_marks

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_mailbox(settings):
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    queue_through_the_task(settings)
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "Platform <platform@example.edu>"
    try:
        yield mailbox
    finally:
        controller.stop()


def test_closing_emails_the_instructor_through_smtp_with_the_outcome_only(client, alert_world, smtp_mailbox,
                                                                          django_capture_on_commit_callbacks):
    a, b = alert_world
    for t in (a, b):
        save_marks(t, create=[(t.students[0], t.attendance, f"{t.institution.slug}: sleeps in class")])
    alert = Alert.objects.for_institution(a.institution).get()
    client.force_login(a.advisor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("alert-detail", args=["alpha", alert.pk]), {
            "action": "close", "close-outcome": "unreachable", "close-notes": "Left two voicemails; housing issue"})
    assert response.status_code == 302
    (sender, recipients, message), = smtp_mailbox.messages
    assert sender == "platform@example.edu" and recipients == ["ines@alpha.example.edu"]
    body = smtp_mailbox.last_body()
    assert a.students[0].display_name in message["Subject"] and "ALPHA University" in message["Subject"]
    assert "Chemistry alpha" in body and "Could not reach the student" in body and "Attendance" in body
    for private in ("voicemail", "housing", "sleeps in class", "beta", a.advisor.username):
        assert private not in body
    # B's instructor heard nothing, B's alert is untouched.
    assert Alert.objects.for_institution(b.institution).get().status == "open"


def test_erasing_a_student_removes_their_alerts_and_events_and_the_preview_counts_them(alert_world):
    a, b = alert_world
    for t in (a, b):
        save_marks(t, create=[(t.students[0], t.attendance, "absent"), (t.students[0], t.grades, "failing"),
                              (t.students[0], t.kudos, "great")])
    plan = erasure_plan(institution=a.institution, students=[a.students[0]])
    deleted = plan.counts["deleted"]
    assert deleted[str(Alert._meta.verbose_name_plural)] == 2
    assert deleted[str(AlertEvent._meta.verbose_name_plural)] == 4
    student_erase(institution=a.institution, student=a.students[0], confirm_external_id=a.students[0].external_id,
                  erased_by=a.admin)
    assert Alert.objects.for_institution(a.institution).count() == 0
    assert AlertEvent.objects.for_institution(a.institution).count() == 0
    assert Alert.objects.for_institution(b.institution).count() == 2
    assert AlertEvent.objects.for_institution(b.institution).count() == 4


def test_the_subject_access_export_holds_the_alerts_with_their_history_and_only_the_students(client, alert_world):
    from privacy.export import student_export

    a, b = alert_world
    for t in (a, b):
        save_marks(t, create=[(t.students[0], t.attendance, f"{t.institution.slug} absent"),
                              (t.students[3], t.attendance, f"{t.institution.slug} other student")])
    document = student_export(institution=a.institution, student=a.students[0])
    (alert,) = document["alerts"]
    assert alert["comment"] == "alpha absent" and alert["concern"] == "Attendance"
    assert [e["kind"] for e in alert["history"]] == ["raised", "routed"]
    assert "alerts" not in document["other_linked_records"]
    client.force_login(a.admin)
    page = client.get(reverse("student-export", args=["alpha", a.students[0].pk]))
    assert page.status_code == 200 and b"alpha absent" in page.content
    assert b"other student" not in page.content and b"beta" not in page.content
