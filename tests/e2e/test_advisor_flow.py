"""An advisor's day, in a real browser: caseload -> a flagged student -> why -> what-if -> log -> timeline."""

from __future__ import annotations

import datetime
import re

import pytest

from institutions.jobs import job_create
from institutions.models import JobKind
from institutions.scoping import institution_scope
from interventions.models import InterventionType
from interventions.services import (
    caseload_assign,
    flag_raise,
    intervention_create,
    intervention_type_create_defaults,
)
from predictions.models import LatestPrediction
from predictions.tasks import rescore_students
from students.models import Outcome, Student
from students.selectors import current_students
from tests.interventions.conftest import trained_a  # noqa: F401 - fixture

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def advisor_world(trained_a):  # noqa: F811 - the fixture imported above
    a = trained_a
    job, _ = job_create(institution=a.institution, kind=JobKind.RESCORE, params={"full": True})
    rescore_students.apply(kwargs={"institution_id": a.institution.pk, "job_id": job.pk})
    with institution_scope(a.institution):
        ids = list(current_students(institution=a.institution).values_list("pk", flat=True))
        caseload_assign(institution=a.institution, student_ids=ids, advisor=a.advisor, actor=a.admin)
        flag_raise(institution=a.institution, student=ids[-1], reason="Missed the last three tutorials",
                   raised_by=a.admin)
        intervention_type_create_defaults(institution=a.institution)  # as institution_create gives them
    return a


def test_advisor_works_a_flagged_student_from_caseload_to_timeline(live_server, page, screenshot, advisor_world):
    log_in(page, live_server, "alpha-advisor")
    # Home is the caseload.
    assert page.url.endswith("/i/alpha/caseload/")
    page.get_by_role("heading", name="My caseload").wait_for()
    screenshot(page, "caseload")
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() == 50  # one page of the caseload, highest risk first
    first = rows.first
    first.locator(".badge", has_text="model").wait_for()
    name = first.locator("td a").first.inner_text()
    first.locator("td a").first.click()

    # The profile: risk, band, the factors behind it.
    page.get_by_role("heading", name=name).wait_for()
    risk_text = page.locator("#risk-value").inner_text()
    risk_now = float(risk_text.rstrip("%"))
    assert page.locator("#risk-band").inner_text().endswith("risk")
    factors = page.locator("li.factor")
    assert factors.count() >= 2
    assert factors.filter(has_text="raises").count() + factors.filter(has_text="lowers").count() >= 1
    screenshot(page, "student-profile")

    # What if every unit were approved and fees paid up? The live model answers.
    page.get_by_label("Units approved").fill("30")
    page.get_by_label("Tuition up to date").select_option("true")
    page.get_by_role("button", name="Recompute risk").click()
    page.locator("#what-if-risk").wait_for()
    risk_after = float(page.locator("#what-if-risk").inner_text().rstrip("%"))
    assert risk_after < risk_now
    assert f"instead of {risk_now:.1f}%" in page.locator("#what-if-result").inner_text()

    # Log a phone call with a follow-up; it appears on the timeline.
    page.get_by_label("Type").select_option(label="Phone call")
    page.get_by_label("Notes").fill("Called about the unpaid fees; agreed a payment plan.")
    page.get_by_label("Follow up on").fill("2031-01-15")
    page.get_by_role("button", name="Save intervention").click()
    page.wait_for_url(re.compile(r".*/students/\d+/#timeline$"))
    timeline = page.locator("#timeline")
    timeline.get_by_text("Called about the unpaid fees; agreed a payment plan.").wait_for()
    assert "Phone call" in timeline.inner_text() and "follow up 2031-01-15" in timeline.inner_text()
    assert "Intervention logged." in page.locator("main").inner_text()


def test_admin_and_viewer_pages_render_in_the_browser(live_server, page, screenshot, advisor_world):
    log_in(page, live_server, "alpha-admin")
    assert page.url.endswith("/i/alpha/")
    page.get_by_role("heading", name=re.compile("dashboard")).wait_for()
    assert int(page.locator("[data-figure=flagged]").inner_text().replace(",", "")) > 0
    # The charts are drawn by static/js/dashboard.js from the json_script data.
    for chart in ("chart-bands", "chart-histogram", "chart-over-time"):
        page.wait_for_function(f"Chart.getChart(document.getElementById('{chart}')) !== undefined")
    screenshot(page, "dashboard")
    page.goto(f"{live_server.url}/i/alpha/flagged/")
    page.get_by_role("heading", name="Flagged students").wait_for()
    assert page.locator("table.worklist tbody tr").count() > 0
    screenshot(page, "flagged-list")
    # "Select all on this page" (static/js/flagged-list.js) ticks every student for bulk assignment.
    boxes = page.locator('input[name="students"][form="assign-form"]')
    page.get_by_label("Select all on this page").check()
    assert boxes.count() > 0 and all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    # The model page's calibration and importance charts (static/js/model-charts.js).
    page.goto(f"{live_server.url}/i/alpha/models/")
    for suffix in ("calibration", "importance"):
        page.wait_for_function(f"[...document.querySelectorAll(\"canvas[id$='-{suffix}']\")]"
                               f".some(canvas => Chart.getChart(canvas) !== undefined)")
    # Removing a member asks first (data-confirm, static/js/app.js); dismissing keeps them.
    page.goto(f"{live_server.url}/i/alpha/members/")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.locator("form[data-confirm]").first.get_by_role("button", name="Remove").click()
    assert questions and questions[0].startswith("Remove ") and "students will be unassigned" in questions[0]
    assert page.url.endswith("/i/alpha/members/")
    # A term later: some scored students got a meeting, and outcomes became known.
    a = advisor_world
    with institution_scope(a.institution):
        meeting = InterventionType.objects.get(key="meeting")
        ranked = list(LatestPrediction.objects.order_by("rank").values_list("student_id", flat=True))
        for student_id in ranked[::3]:
            intervention_create(institution=a.institution, student=student_id, intervention_type=meeting,
                                date=datetime.date.today(), author=a.advisor)
        for i, student_id in enumerate(ranked):
            outcome = Outcome.DROPPED_OUT if (i < len(ranked) // 2) == (i % 4 != 0) else Outcome.GRADUATED
            Student.objects.filter(pk=student_id).update(outcome=outcome)
    page.goto(f"{live_server.url}/i/alpha/effectiveness/")
    page.get_by_text("This is observational").wait_for()
    row = page.locator("tr[data-type=meeting]")
    assert row.locator("td").nth(0).inner_text() == str(len(ranked[::3]))
    assert "Not enough students to conclude" in row.inner_text()
    screenshot(page, "effectiveness")


def test_workspace_pages_fit_a_phone_screen(live_server, browser, screenshot, advisor_world):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    page = context.new_page()
    try:
        log_in(page, live_server, "alpha-advisor")
        student = advisor_world.students[0]
        for path in ("/i/alpha/caseload/", f"/i/alpha/students/{student.pk}/", "/i/alpha/dashboard/"):
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone screen"
        # The collapsed menu opens from its toggle button.
        page.get_by_role("button", name="Menu").click()
        page.get_by_role("button", name="Insights").click()
        page.get_by_role("link", name="Did it help? (effectiveness)").wait_for(state="visible")
        page.wait_for_timeout(600)  # let the menu's transition and the charts' resize settle
        screenshot(page, "dashboard-phone")
    finally:
        context.close()
