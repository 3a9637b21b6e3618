"""The progress survey in Chromium: the instructor answers from the emailed link on a 375 px phone
with the keyboard alone (no horizontal scroll, touch targets of 44 px), and every survey page, the
administrator's and the instructor's (refusals included), has no axe-core WCAG 2.1 A/AA violation."""

from __future__ import annotations

import pytest
from django.core import mail

from courses.models import SurveyInvitation, SurveyMark
from tests.courses.conftest import build_survey_world
from tests.courses.survey_helpers import links_by_recipient, open_survey

from .axe import axe_violations, violations_report
from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def survey_world(tenants):
    a, b = tenants
    world = build_survey_world(a, instructors=3, students_per_section=4)
    build_survey_world(b, instructors=2)
    world.survey = open_survey(world)
    world.links = links_by_recipient()
    mail.outbox.clear()
    return world


def _no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_an_instructor_answers_on_a_phone_with_the_keyboard(live_server, browser, survey_world, screenshot):
    world = survey_world
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="en-GB", is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    found = {}
    try:
        page.goto(live_server.url + world.links["teacher0@alpha.example.edu"])
        page.get_by_role("heading", name="Mid-term check").wait_for()
        assert _no_horizontal_scroll(page)
        if violations := axe_violations(page):
            found["instructor page (375 px)"] = violations
        labels = page.locator("label.survey-touch")
        assert labels.count() == 4 * len(world.types)
        box = labels.first.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44
        screenshot(page, "survey-instructor-phone")
        # Keyboard only: focus the first student's first choice, tick it, write a comment, save.
        first = page.locator("input.btn-check").first
        first.focus()
        page.keyboard.press("Space")
        assert first.is_checked()
        page.keyboard.press("Tab")  # the next choice
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.getAttribute('name') || ''")
        assert focused.startswith("m:")
        comment = page.locator("textarea").first
        comment.focus()
        page.keyboard.type("Missed the last two labs")
        page.get_by_role("button", name="Save Course 0, section 1").focus()
        page.keyboard.press("Enter")
        page.get_by_text("Saved for Course 0, section 1: 1 new").wait_for()
        assert _no_horizontal_scroll(page)
        if violations := axe_violations(page):
            found["instructor page after saving"] = violations
        mark = SurveyMark.objects.for_institution(world.institution).get()
        assert mark.comment == "Missed the last two labs" and mark.concern_type == world.types[0]
        assert SurveyInvitation.objects.for_institution(world.institution).get(
            instructor=world.instructors[0]).answered_at is not None
        for path in ("/survey/1.not-a-real-token-at-all-xxxxxxxxxxxx/",):
            response = page.goto(live_server.url + path)
            assert response.status == 404
            assert _no_horizontal_scroll(page)
            if violations := axe_violations(page):
                found[f"refused link {path}"] = violations
    finally:
        context.close()
    assert not found, "axe-core found WCAG 2.1 A/AA violations:\n" + violations_report(found)


def test_the_administrators_survey_pages_have_no_wcag_violations(live_server, page, survey_world):
    world = survey_world
    log_in(page, live_server, "alpha-admin")
    found = {}
    titles = set()
    for path in ("/i/alpha/surveys/", "/i/alpha/surveys/new/", "/i/alpha/surveys/concern-types/",
                 f"/i/alpha/surveys/{world.survey.pk}/"):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        titles.add(page.title())
        if violations := axe_violations(page):
            found[path] = violations
    # The preview, with the keyboard: the form's own button.
    page.goto(live_server.url + "/i/alpha/surveys/new/")
    page.get_by_label("Term").select_option(label="Autumn 2026")
    page.get_by_label("Title").fill("Week 8 check")
    page.get_by_role("button", name="Preview who gets it").click()
    page.wait_for_load_state("networkidle")
    if "Nothing has been sent yet" not in page.content():
        raise AssertionError(page.locator("main").inner_text())
    page.get_by_text("Nothing has been sent yet").wait_for()
    assert "will email 2 instructors teaching 3 sections" in " ".join(page.locator("#survey-preview").inner_text()
                                                                      .split())
    if violations := axe_violations(page):
        found["preview"] = violations
    assert mail.outbox == []
    page.get_by_role("button", name="Open the survey and email 2 instructors").click()
    page.get_by_text("The survey is open").wait_for()
    assert len(mail.outbox) == 2
    assert len(titles) == 4, titles
    assert not found, "axe-core found WCAG 2.1 A/AA violations:\n" + violations_report(found)
