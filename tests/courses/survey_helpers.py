"""Opening a survey as the administrator would, and reading the links out of the emails."""

from __future__ import annotations

import re

from django.core import mail
from django.test import TestCase

from courses.surveys import survey_open, survey_preview
from institutions.scoping import institution_scope

from .conftest import window

LINK = re.compile(r"https?://[^/\s]+(/survey/[^/\s]+/)")


def open_survey(world, *, opens_at=None, closes_at=None, types=None, title="Mid-term check", auto_remind_at=None):
    start, end = window()
    with institution_scope(world.institution), TestCase.captureOnCommitCallbacks(execute=True):
        preview = survey_preview(institution=world.institution, term=world.term)
        return survey_open(institution=world.institution, user=world.tenant.admin,
                           expected_fingerprint=preview.fingerprint,
                           data={"term": world.term, "title": title, "message": "Thanks for your help.",
                                 "opens_at": opens_at or start, "closes_at": closes_at or end,
                                 "concern_type_ids": [t.pk for t in (types or world.types)],
                                 "auto_remind_at": auto_remind_at})


def links_by_recipient(outbox=None) -> dict[str, str]:
    """The last link each recipient was sent (path only)."""
    links = {}
    for message in outbox if outbox is not None else mail.outbox:
        found = LINK.search(message.body)
        if found:  # other emails (an account invitation) carry no survey link
            links[message.to[0]] = found.group(1)
    return links
