"""Headless Chromium (Debian's /usr/bin/chromium) driven by Python Playwright against live_server.

Playwright's own browser download cannot work offline, so the system Chromium is launched
directly. Tests skip with a reason when either is missing. Set ``DP_SCREENSHOTS=1`` to refresh
the screenshots in docs/screenshots/ (otherwise they go to the test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# Playwright's sync API runs an event loop in this thread; the test's own ORM set-up is still
# ordinary synchronous code, so Django's async-safety guard would misfire here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(tmp_path):
    target = SCREENSHOTS if os.environ.get("DP_SCREENSHOTS") else tmp_path

    def take(page, name: str) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def log_in(page, live_server, username: str, password: str = "pw-for-tests") -> None:
    """Signs in on the login page in whatever language it is shown (the fields by their names)."""
    page.goto(f"{live_server.url}/accounts/login/")
    form = page.locator("form:has(input[name=username])")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")


def sign_in_through_the_institutions_provider(
    page, live_server, *, email: str, provider_name: str, provider_heading: str, provider_url: str, username: str,
    password: str, buttons: tuple[str, ...], slug: str, screenshot, screenshot_names: tuple[str, str],
) -> None:
    """The single sign-on walk a person takes: the login page finds their institution's provider by
    their email address, the provider's own page (``provider_url``) takes their campus username
    and password, they press ``buttons`` there in turn, and the browser lands in institution
    ``slug``. ``screenshot_names``: the provider's page before the sign-in, and where they land."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Your email address").fill(email)
    page.get_by_role("button", name="Sign in with your institution").click()
    page.get_by_role("button", name=f"Sign in with {provider_name}").click()
    page.get_by_role("heading", name=provider_heading).wait_for()
    assert page.url.startswith(provider_url)
    page.get_by_label("Campus username").fill(username)
    page.get_by_label("Campus password").fill(password)
    screenshot(page, screenshot_names[0])
    for name in buttons:
        page.get_by_role("button", name=name).click()
    page.wait_for_url(f"{live_server.url}/i/{slug}/**")
    # The link sits in the closed "Work" menu: present in the page, not visible.
    page.get_by_role("link", name="My caseload", include_hidden=True).wait_for(state="attached")
    screenshot(page, screenshot_names[1])


def assert_an_advisor_of_the_first_institution_only(page, live_server, user, first, second) -> None:
    """``user`` signed in as an advisor of ``first`` (no admin links) and holds nothing at ``second``,
    whose pages answer 404."""
    from institutions.models import Membership, Role

    assert Membership.objects.for_institution(first.institution).get(user=user).role == Role.ADVISOR
    # An advisor, not an admin: no Members link even in the closed menus.
    assert page.get_by_role("link", name="Members", include_hidden=True).count() == 0
    assert not Membership.objects.for_institution(second.institution).filter(user=user).exists()
    assert page.goto(f"{live_server.url}/i/{second.institution.slug}/").status == 404
