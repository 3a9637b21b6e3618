"""An invitation in a real browser, the email going through a real SMTP server: an admin
invites an address, the person opens the emailed link, chooses a password and lands as a member;
then logs out and back in with that password."""

from __future__ import annotations

import re

import pytest

from institutions.models import Membership
from tests.accounts.test_email_flows import smtp_server  # noqa: F401 - fixture

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery-staple-42"


def test_an_invited_person_joins_through_the_emailed_link(live_server, page, screenshot, tenants,
                                                          smtp_server):  # noqa: F811 - the fixture imported above
    a, _b = tenants
    log_in(page, live_server, "alpha-admin")
    page.goto(f"{live_server.url}/i/alpha/members/")
    page.get_by_role("link", name="Invite a member").click()
    page.locator("main").get_by_label("Email").fill("new.person@example.edu")  # not the search box of the bar
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to new.person@example.edu as Viewer.").wait_for()
    screenshot(page, "invitations")

    body = smtp_server.last_body()
    link = re.search(r"https?://\S+/accounts/invitations/\S+/", body).group(0)
    page.get_by_role("button", name="Log out").click()
    page.goto(link)
    page.get_by_role("heading", name="Join ALPHA University").wait_for()
    page.get_by_label("Username").fill("new.person")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    screenshot(page, "invitation-accept")
    page.get_by_role("button", name="Create account and join").click()
    page.get_by_text("Welcome to ALPHA University: you are Viewer.").wait_for()
    assert Membership.objects.for_institution(a.institution).get(user__username="new.person").role == "viewer"

    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server, "new.person", PASSWORD)
    assert "/i/alpha/" in page.url
