"""The closed loop in a real browser, every email through a real SMTP server: an administrator
opens a progress survey; an instructor with no account answers it on a phone from the emailed
link; the concern becomes an alert routed to the student's advisor, whose digest lists it and
whose bell counts it; the advisor works and closes it; the instructor is emailed that it was
handled. All of it in one institution: the other institution's instructor, advisor and students
see nothing."""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone

from courses.models import (
    AcademicSession,
    ConcernType,
    Course,
    Enrolment,
    Instructor,
    Section,
    SectionTerm,
    TeachingAssignment,
)
from courses.surveys import concern_type_create_defaults
from institutions.scoping import institution_scope
from interventions.models import Alert, AlertStatus
from tests.accounts.test_email_flows import smtp_server  # noqa: F401 - fixture
from workspace.digests import digests_send
from workspace.models import Notification

from .axe import axe_violations, violations_report
from .conftest import log_in


def assert_no_axe_violations(page, where: str) -> None:
    found = axe_violations(page)
    assert not found, violations_report({where: found})

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _roster(tenant, *, instructor_email: str):
    """A term running today, one section taught by one instructor, the tenant's first two students in it."""
    institution = tenant.institution
    today = timezone.localdate()
    with institution_scope(institution):
        if not ConcernType.objects.exists():
            concern_type_create_defaults(institution=institution)
        term = AcademicSession.objects.create(source_id="T1", title="Autumn term", kind="term",
                                              start_date=today - datetime.timedelta(days=30),
                                              end_date=today + datetime.timedelta(days=60))
        course = Course.objects.create(source_id="C1", title="Calculus I", course_code="MAT101")
        section = Section.objects.create(source_id="S1", course=course, title="Calculus I, group A")
        SectionTerm.objects.create(section=section, term=term)
        instructor = Instructor.objects.create(source_id="I1", given_name="Inês", family_name="Prof",
                                               email=instructor_email)
        TeachingAssignment.objects.create(source_id="TA1", section=section, instructor=instructor, primary=True)
        for n, student in enumerate(tenant.students[:2]):
            Enrolment.objects.create(source_id=f"E{n}", section=section, student=student)
    return section


def _mail_to(mailbox, address: str) -> list[str]:
    return [message.get_payload(decode=True).decode() if not message.is_multipart()
            else message.get_payload(0).get_payload(decode=True).decode()
            for _sender, recipients, message in mailbox.messages if address in recipients]


def test_an_instructors_concern_reaches_the_advisor_who_closes_it_and_the_instructor_is_told(
        live_server, browser, page, screenshot, tenants, smtp_server, settings):  # noqa: F811 - the fixture above
    a, b = tenants
    settings.SITE_URL = live_server.url  # the emails' links lead to this server
    section = _roster(a, instructor_email="ines.prof@alpha.example.edu")
    _roster(b, instructor_email="someone@beta.example.edu")
    student = a.students[0]
    assert student.advisor_id == a.advisor.pk

    # An administrator opens the survey, after the preview says who gets it.
    log_in(page, live_server, a.admin.username)
    page.goto(f"{live_server.url}/i/{a.institution.slug}/surveys/new/")
    page.get_by_label("Term").select_option(label="Autumn term")
    page.get_by_label("Title").fill("Week 6 progress check")
    now = timezone.localtime()
    page.get_by_label("Opens").fill((now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Closes").fill((now + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Attendance (concern)").check()
    page.get_by_label("Kudos: doing well (kudos)").check()
    page.get_by_role("button", name="Preview who gets it").click()
    page.get_by_role("button", name="Open the survey and email 1 instructor").click()
    page.wait_for_load_state("networkidle")

    invitations = _mail_to(smtp_server, "ines.prof@alpha.example.edu")
    assert len(invitations) == 1
    assert not _mail_to(smtp_server, "someone@beta.example.edu")
    link = re.search(r"https?://\S+/survey/[^/\s]+/", invitations[0]).group(0)

    # The instructor, with no account, answers on a phone.
    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                locale="en-GB")
    instructor_page = phone.new_page()
    instructor_page.set_default_timeout(20_000)
    instructor_page.goto(link)
    instructor_page.get_by_role("heading", name="Week 6 progress check").wait_for()
    assert instructor_page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    assert b.students[0].name and b.students[0].name not in instructor_page.content()
    assert_no_axe_violations(instructor_page, "the instructor's survey page on a phone")
    row = instructor_page.get_by_role("group", name=re.compile(student.external_id))
    row.get_by_text("Attendance", exact=True).tap()
    row.get_by_label("Comment (optional, goes with what you ticked)").fill("Missed the last three classes.")
    screenshot(instructor_page, "survey-instructor-phone")
    instructor_page.get_by_role("button", name=f"Save {section.title}").tap()
    instructor_page.wait_for_load_state("networkidle")
    instructor_page.get_by_text(f"Saved for {section.title}: 1 new, 0 changed, 0 removed. Thank you.").wait_for()
    phone.close()

    # The concern is an alert routed to the student's advisor; the other institution has none.
    with institution_scope(a.institution):
        alert = Alert.objects.get(student=student)
    assert alert.assigned_user_id == a.advisor.pk and alert.status == AlertStatus.OPEN
    assert alert.comment == "Missed the last three classes."
    with institution_scope(b.institution):
        assert not Alert.objects.exists()
    assert not Notification.objects.for_institution(b.institution).exists()

    # The advisor's digest lists it, with a link to it.
    with institution_scope(a.institution):
        assert digests_send(institution=a.institution)["sent"] >= 1
    digest = _mail_to(smtp_server, a.advisor.email)
    assert digest, "the advisor's digest was not delivered"
    alert_link = re.search(rf"https?://\S+/i/{a.institution.slug}/alerts/{alert.pk}/", digest[-1]).group(0)
    assert "Missed the last three classes." not in digest[-1]  # the digest names, it does not quote

    # The advisor signs in: the bell counts it, and the digest's link opens it.
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server, a.advisor.username)
    assert page.locator("#notification-bell").inner_text().split()[-2:] == ["1", "unread"] or \
        "1" in page.locator("#notification-bell .badge").inner_text()
    page.goto(alert_link)
    page.get_by_role("heading", name=re.compile("Attendance")).wait_for()
    assert_no_axe_violations(page, "the advisor's alert page")
    page.get_by_role("button", name="Acknowledge: I have it").click()
    page.get_by_text("Close with an outcome").click()
    close_form = page.locator("form:has(input[name=action][value=close])")
    close_form.get_by_label("Outcome").select_option(label="Support arranged")
    close_form.get_by_label("What was done (not sent to the instructor)").fill("Met the student; tutoring booked.")
    close_form.get_by_role("button", name="Close").click()
    page.wait_for_load_state("networkidle")
    screenshot(page, "alert-closed")
    with institution_scope(a.institution):
        alert.refresh_from_db()
    assert alert.status == AlertStatus.CLOSED and alert.closed_by_id == a.advisor.pk
    assert alert.raiser_told_at is not None

    # The instructor is told it was handled: the outcome's category, never the advisor's notes.
    told = _mail_to(smtp_server, "ines.prof@alpha.example.edu")
    assert len(told) == 2
    assert "Support arranged" in told[-1] and "tutoring booked" not in told[-1]
    assert not _mail_to(smtp_server, "someone@beta.example.edu")
