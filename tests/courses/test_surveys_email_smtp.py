"""The invitation email travels through the configured backend (queued through the Celery task,
in-process here) to a real SMTP server the test starts, and its link opens the roster."""

from __future__ import annotations

import re

import pytest

from tests.accounts.test_email_flows import smtp_server  # noqa: F401 - fixture

from .survey_helpers import open_survey

pytestmark = pytest.mark.django_db


def test_the_survey_email_reaches_a_real_smtp_server_and_its_link_opens_only_that_roster(
        client, worlds, smtp_server, settings):  # noqa: F811 - the fixture imported above
    settings.SITE_URL = "http://testserver"
    a, b = worlds
    open_survey(a)
    assert sorted(r for _sender, rcpts, _m in smtp_server.messages for r in rcpts) == [
        "teacher0@alpha.example.edu", "teacher1@alpha.example.edu"]
    open_survey(b, title="Beta check")
    beta = [m for _s, rcpts, m in smtp_server.messages if rcpts[0].endswith("@beta.example.edu")]
    assert len(beta) == 2 and all("Beta check" in m["Subject"] for m in beta)
    sender, recipients, message = smtp_server.messages[0]
    assert sender == "platform@example.edu"
    body = message.get_payload(decode=True).decode()
    assert "Mid-term check" in message["Subject"] and "ALPHA University" in body
    link = re.search(r"http://testserver(/survey/\S+/)", body).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200
    assert page.context["instructor"].email == recipients[0]
    assert page.context["survey_institution"] == a.institution
