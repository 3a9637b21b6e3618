"""The main flows by keyboard alone (WCAG 2.1.1), with the focus visible at every stop (2.4.7):
caseload -> profile -> log an intervention, and upload -> map -> import. axe-core checks the
import pages on the way, and the navigation bar with its menus open at 1366 px and on a phone."""

from __future__ import annotations

import re
import time

import pytest

from students.models import Student
from tests.e2e.test_advisor_flow import advisor_world  # noqa: F401 - fixture
from tests.interventions.conftest import trained_a  # noqa: F401 - fixture

from .axe import axe_violations, violations_report
from .test_admin_flow import export_file

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FOCUS_SHOWN = """() => {
    const el = document.activeElement, style = getComputedStyle(el);
    return (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== "none";
}"""


def tab_to(page, matches: str, *, limit: int = 120) -> None:
    """Press Tab until the focused element satisfies the JS predicate ``matches`` (``el => bool``);
    an element focused already (autofocus) counts."""
    for attempt in range(limit):
        if attempt:
            page.keyboard.press("Tab")
        if page.evaluate(f"({matches})(document.activeElement)"):
            assert page.evaluate(FOCUS_SHOWN), "the focused element shows no focus indicator: " + matches
            return
    raise AssertionError(f"Tab never reached {matches}")


def choose(page, value: str, *, limit: int = 60) -> None:
    """On the focused <select>, press the arrow keys until ``value`` is chosen."""
    page.keyboard.press("Home")
    for _ in range(limit):
        if page.evaluate("document.activeElement.value") == value:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"the select never offered {value!r}")


def keyboard_log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    tab_to(page, "el => el.name === 'username'")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type("pw-for-tests")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert "/accounts/login/" not in page.url, "the keyboard log-in did not go through"


def label(text: str) -> str:
    return f"el => el.labels && [...el.labels].some(l => l.textContent.trim().startsWith({text!r}))"


def test_advisor_goes_from_caseload_to_profile_and_logs_an_intervention_by_keyboard(
    live_server, page, advisor_world,  # noqa: F811 - the fixture imported above
):
    keyboard_log_in(page, live_server, "alpha-advisor")
    assert page.url.endswith("/i/alpha/caseload/")
    # The first thing Tab reaches is the skip link, and it shows.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    assert page.evaluate(FOCUS_SHOWN)
    tab_to(page, "el => el.matches('table.worklist tbody tr:first-child td a')")
    name = page.evaluate("document.activeElement.textContent.trim()")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=name).wait_for()

    tab_to(page, "el => el.textContent.trim() === 'Log an intervention'")
    page.keyboard.press("Enter")
    tab_to(page, label("Type"))
    choose(page, page.evaluate("[...document.activeElement.options].find(o => o.text === 'Phone call').value"))
    tab_to(page, label("Notes"))
    page.keyboard.type("Called by keyboard alone; agreed a study plan.")
    tab_to(page, label("Follow up on"))
    page.keyboard.type("01152031")  # the date field takes the digits in the locale's order (en-GB: dd mm yyyy)
    if page.evaluate("document.activeElement.value") != "2031-01-15":
        page.evaluate("document.activeElement.value = ''")
        page.keyboard.type("15012031")
    tab_to(page, "el => el.textContent.trim() === 'Save intervention'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/students/\d+/#timeline$"))
    timeline = page.locator("#timeline")
    timeline.get_by_text("Called by keyboard alone; agreed a study plan.").wait_for()
    assert "Phone call" in timeline.inner_text() and "follow up 2031-01-15" in timeline.inner_text()


def test_admin_uploads_maps_and_imports_by_keyboard_and_the_import_pages_pass_axe(
    live_server, page, tmp_path, trained_a,  # noqa: F811 - the fixture imported above
):
    a = trained_a
    found = {}
    keyboard_log_in(page, live_server, "alpha-admin")
    page.goto(f"{live_server.url}/i/alpha/imports/")
    found["upload"] = axe_violations(page)
    tab_to(page, "el => el.type === 'file'")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(export_file(tmp_path)))
    tab_to(page, "el => el.textContent.trim() === 'Upload and preview'")
    page.keyboard.press("Enter")

    page.get_by_role("heading", name="Preview and column mapping").wait_for()
    found["mapping"] = axe_violations(page)
    targets = {"Student id": "external_id", "Name": "name", "Program": "program",
               "Units approved": "feature:units_approved", "Tuition up to date": "feature:tuition_up_to_date",
               "Gender": "feature:gender"}
    for column, target in targets.items():
        tab_to(page, label(f"Column “{column}”"))
        choose(page, target)
    tab_to(page, "el => el.textContent.trim() === 'Validate the whole file'")
    page.keyboard.press("Enter")
    page.get_by_role("button", name=re.compile(r"Import 12 rows")).wait_for()
    found["validated"] = axe_violations(page)
    tab_to(page, "el => /^Import 12 rows/.test(el.textContent.trim())")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not Student.objects.for_institution(a.institution).filter(
            external_id="N0011").exists():
        time.sleep(0.5)
    assert Student.objects.for_institution(a.institution).get(external_id="N0011").name == "New student 11"
    page.goto(page.url)  # the report as it stands once the import is done (the running page refreshes itself)
    page.wait_for_load_state("networkidle")
    found["imported"] = axe_violations(page)
    found = {k: v for k, v in found.items() if v}
    assert not found, violations_report(found)


def test_navigation_fits_one_line_at_1366_and_its_menus_pass_axe_open_on_desktop_and_phone(
    live_server, browser, advisor_world,  # noqa: F811 - the fixture imported above
):
    found = {}
    for width, height in ((1366, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
        page = context.new_page()
        try:
            keyboard_log_in(page, live_server, "alpha-admin")
            page.goto(f"{live_server.url}/i/alpha/flagged/")
            bar = page.locator("nav.navbar").bounding_box()
            if width == 1366:
                assert bar["height"] < 80, f"the navigation wraps at 1366 px ({bar['height']} px high)"
                assert page.locator("#site-search").is_visible()
            else:
                assert not page.locator("#site-search").is_visible()  # collapsed behind Menu
                found["phone, closed"] = axe_violations(page)
                page.get_by_role("button", name="Menu").focus()
                page.keyboard.press("Enter")
                page.locator("#nav-main.show").wait_for()
            # Ctrl+K reaches the search box; Escape-free: the menu opens with Enter and arrows.
            page.keyboard.press("Control+k")
            page.wait_for_function("document.activeElement && document.activeElement.id === 'site-search'")
            page.get_by_role("button", name="Administration").focus()
            page.keyboard.press("Enter")
            page.keyboard.press("ArrowDown")
            assert page.evaluate("document.activeElement.classList.contains('dropdown-item')")
            assert page.evaluate(FOCUS_SHOWN)
            page.wait_for_timeout(300)
            found[f"{width}px, Administration open"] = axe_violations(page)
            page.keyboard.press("Escape")
            # The search answers from the bar.
            page.keyboard.press("Control+k")
            page.keyboard.type(advisor_world.students[0].external_id)
            page.keyboard.press("Enter")
            page.get_by_role("heading", name="Students").wait_for()
            assert page.locator("tbody tr").first.inner_text().startswith(advisor_world.students[0].external_id)
        finally:
            context.close()
    found = {k: v for k, v in found.items() if v}
    assert not found, violations_report(found)
