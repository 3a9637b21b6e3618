"""Every page, for each role, has no axe-core violation of the WCAG 2.1 A and AA rules, and a title of its own.

One world (two institutions, a trained model, a caseload, an intervention, a webhook, an import,
an invitation) is crawled as the administrator, the advisor and the viewer of institution A,
and the pages anyone sees (log in, password reset, the error pages) signed out.
"""

from __future__ import annotations

import datetime

import pytest

from accounts.models import UserPreference
from accounts.services import invitation_create
from institutions.scoping import institution_scope
from institutions.webhooks import webhook_endpoint_create
from interventions.models import Alert, InterventionType
from interventions.services import intervention_create
from tests.courses.conftest import build_survey_world
from tests.courses.survey_helpers import links_by_recipient, open_survey
from tests.e2e.test_advisor_flow import advisor_world  # noqa: F401 - fixture
from tests.interventions.alerts_fixtures import build_alert_world, save_marks
from tests.interventions.conftest import trained_a  # noqa: F401 - fixture
from workspace.models import NotificationKind
from workspace.notifications import notifications_create

from .axe import axe_violations, violations_report
from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

UPLOAD = "Student id;Name;Units approved\nN0001;New student;12\nN0002;Other student;3\n"


@pytest.fixture
def crawl_world(advisor_world, tenant_b, tmp_path):  # noqa: F811 - the fixture imported above
    a = advisor_world
    with institution_scope(a.institution):
        student = a.students[1]
        a.intervention = intervention_create(
            institution=a.institution, student=student, author=a.advisor, notes="Talked about the timetable.",
            intervention_type=InterventionType.objects.get(key="meeting"), date=datetime.date.today(),
        )
        a.webhook = webhook_endpoint_create(institution=a.institution, url="https://sis.example.edu/hooks",
                                            events=["student.flagged"], created_by=a.admin)
        invitation_create(institution=a.institution, email="new.advisor@example.edu", role="advisor",
                          invited_by=a.admin, base_url="http://testserver")
        a.feature = a.features[0]
        # Each role has an unread notification: the bell shows a count and the list has an item.
        notifications_create(institution=a.institution, user_ids=[a.admin.pk, a.advisor.pk, a.viewer.pk],
                             kind=NotificationKind.ALERT_ROUTED,
                             title=f"Alert routed to you: student {student.external_id}",
                             url=f"/i/alpha/students/{student.pk}/", student_id=student.pk)
    build_alert_world(a)  # concern types, a course, an instructor's survey, an office with a member
    save_marks(a, create=[(a.students[0], a.attendance, "Missed three classes"),
                          (a.students[0], a.kudos, "Great lab report")])
    a.alert = Alert.objects.for_institution(a.institution).get()
    a.other_student = tenant_b.students[0]
    survey_world = build_survey_world(a, instructors=2)
    a.opened_survey = open_survey(survey_world)  # through the service: its links were emailed
    a.survey_link = next(iter(links_by_recipient().values()))
    a.upload_file = tmp_path / "export.csv"
    a.upload_file.write_text(UPLOAD, encoding="utf-8")
    return a


def pages_for(role: str, a) -> list[str]:
    s = a.students[1].pk
    common = ["/", "/i/alpha/dashboard/", "/i/alpha/effectiveness/", "/i/alpha/data-schema/", "/i/alpha/models/",
              f"/i/alpha/models/v{a.version.number}/", "/accounts/password_change/", "/accounts/two-factor/setup/",
              "/i/alpha/notifications/", "/i/alpha/notifications/?unread=1", "/i/alpha/notifications/preferences/"]
    work = ["/i/alpha/caseload/", "/i/alpha/flagged/", "/i/alpha/interventions/", "/i/alpha/students/",
            f"/i/alpha/students/{s}/", f"/i/alpha/interventions/{a.intervention.pk}/",
            "/i/alpha/alerts/", f"/i/alpha/alerts/{a.alert.pk}/", f"/i/alpha/students/{a.students[0].pk}/",
            "/i/alpha/applicants/score/"]
    admin = ["/i/alpha/members/", "/i/alpha/invitations/", "/i/alpha/access/", "/i/alpha/security/",
             "/i/alpha/sso/", "/i/alpha/sso/new/", "/i/alpha/imports/", "/i/alpha/data-schema/manage/",
             f"/i/alpha/data-schema/{a.feature.pk}/edit/", "/i/alpha/intervention-types/", "/i/alpha/api-keys/",
             "/i/alpha/webhooks/", f"/i/alpha/webhooks/{a.webhook.pk}/", "/i/alpha/access-log/",
             "/i/alpha/models/settings/", "/i/alpha/models/jobs/", "/i/alpha/privacy/retention/",
             "/i/alpha/privacy/erasures/", f"/i/alpha/students/{s}/export/", f"/i/alpha/students/{s}/erase/",
             "/i/alpha/alerts/unassigned/", "/i/alpha/alerts/all/", f"/i/alpha/offices/{a.office.pk}/alerts/",
             "/i/alpha/offices/",
             f"/i/alpha/offices/{a.office.pk}/", "/i/alpha/alert-rules/",
             f"/i/alpha/alert-rules/?preview=1&student={a.students[0].external_id}&concern_type={a.attendance.pk}",
             "/i/alpha/surveys/", "/i/alpha/surveys/new/", "/i/alpha/surveys/concern-types/",
             f"/i/alpha/surveys/{a.opened_survey.pk}/"]
    errors = ["/i/alpha/no-such-page/", f"/i/alpha/students/{a.other_student.pk}/"]  # 404s, one of them B's student
    return {"admin": common + work + admin + errors, "advisor": common + work + errors,
            "viewer": [*common, "/i/alpha/members/", *errors]}[role]  # the members page is a 403 for a viewer


SIGNED_OUT = ["/accounts/login/", "/accounts/password_reset/", "/accounts/sso/", "/no/such/page/"]


def check_page(page, url: str, found: dict, titles: dict, where: str) -> None:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page)
    if violations:
        found[where] = violations
    assert response is not None
    if response.status >= 400:
        return  # an error page is one page, whatever the address that led to it
    # The institution's home is the dashboard itself for those who have no caseload: one page, one title.
    shown = page.url.split("?")[0].replace("/i/alpha/dashboard/", "/i/alpha/")
    titles.setdefault(page.title(), set()).add(shown)


def crawl(browser, live_server, a, *, locale: str = "en-GB") -> tuple[dict, list[str], dict]:
    """Every page of every role, then the signed-out ones, in the browser's ``locale``: (axe
    violations by page, titles shared by several pages, the ``<html lang>`` of each page)."""
    found: dict[str, list] = {}
    shared_titles: list[str] = []
    langs: dict[str, str] = {}
    for role in ("admin", "advisor", "viewer"):
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=locale)
        page = context.new_page()
        page.set_default_timeout(20_000)
        titles: dict[str, list] = {}
        try:
            log_in(page, live_server, f"alpha-{role}")
            for path in pages_for(role, a):
                check_page(page, live_server.url + path, found, titles, f"{role} {path}")
                langs[f"{role} {path}"] = page.locator("html").get_attribute("lang") or ""
        finally:
            context.close()
        shared_titles += [f"{role} {title!r}: {', '.join(sorted(urls))}" for title, urls in titles.items()
                          if len(urls) > 1]
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=locale)
    try:
        page = context.new_page()
        titles = {}
        # The instructor's survey page (no account: the emailed link) and a link that opens nothing.
        for path in [*SIGNED_OUT, a.survey_link, "/survey/1.no-such-survey-link-xxxxxxxxxxxxxxxx/"]:
            check_page(page, live_server.url + path, found, titles, f"signed out {path}")
            langs[f"signed out {path}"] = page.locator("html").get_attribute("lang") or ""
        shared_titles += [f"signed out {title!r}: {', '.join(sorted(urls))}" for title, urls in titles.items()
                          if len(urls) > 1]
    finally:
        context.close()
    return found, shared_titles, langs


def test_every_page_for_every_role_has_no_wcag_violations_and_its_own_title(live_server, browser, crawl_world):
    found, shared_titles, _langs = crawl(browser, live_server, crawl_world)
    assert not found, "axe-core found WCAG 2.1 A/AA violations:\n" + violations_report(found)
    assert not shared_titles, "pages share a <title>:\n" + "\n".join(shared_titles)


@pytest.mark.parametrize(("language", "locale"), [("es", "es-ES"), ("pt", "pt-PT")])
def test_every_page_in_spanish_and_portuguese_has_no_wcag_violations_and_says_its_language(
        live_server, browser, crawl_world, language, locale, screenshot):
    """The same crawl with each member's own language chosen, the institution's default set to it (the
    instructor's survey page, without an account) and the browser asking for it (the signed-out
    pages): no violation, and every page's ``<html lang>`` names the language it is in
    (a screen reader picks its voice from it; WCAG 3.1.1)."""
    a = crawl_world
    for user in (a.admin, a.advisor, a.viewer):
        UserPreference.objects.update_or_create(user=user, defaults={"language": language})
    # The institution's default too: an instructor's survey link (no account) speaks it.
    a.institution.default_language = language
    a.institution.save(update_fields=["default_language"])
    found, shared_titles, langs = crawl(browser, live_server, a, locale=locale)
    assert not found, f"axe-core found WCAG 2.1 A/AA violations in {language}:\n" + violations_report(found)
    assert not shared_titles, f"pages share a <title> in {language}:\n" + "\n".join(shared_titles)
    wrong = {where: lang for where, lang in langs.items() if lang != language}
    assert not wrong, f"pages not marked as {language}: {wrong}"
    # Screenshots of the advisor's main pages in this language (docs/screenshots/, DP_SCREENSHOTS=1).
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=locale)
    try:
        page = context.new_page()
        log_in(page, live_server, "alpha-advisor")
        for name, path in (("dashboard", "/i/alpha/dashboard/"), ("caseload", "/i/alpha/caseload/"),
                           ("student-profile", f"/i/alpha/students/{a.students[1].pk}/")):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            screenshot(page, f"{name}-{language}")
    finally:
        context.close()
