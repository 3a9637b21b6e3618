"""How the model pages show what the platform itself wrote on a version (its decision notes)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..services.jobs import NUMBERED_JOB_STAGES
from ..services.promotion import SYSTEM_NOTES
from ..services.training import MEASURED_ON_WORDS

register = template.Library()


@register.filter
def decision_note(note: str) -> str:
    """A note the platform wrote ("rollback", ...) in the reader's language; a person's as written."""
    return gettext(note) if note in SYSTEM_NOTES else note


# What queued a job (Job.triggered_by, stored as a word).
JOB_TRIGGERS = {
    "user": _("a person"), "api": _("the API"), "schedule": _("the schedule"), "import": _("an import"),
    "promotion": _("a promotion"), "cli": _("the command line"), "command": _("the command line"),
    "demo": _("the demo"), "bench": _("a benchmark"),
}


@register.filter
def job_trigger(triggered_by: str) -> str:
    return str(JOB_TRIGGERS.get(triggered_by, triggered_by))


@register.filter
def measured_on(word: str) -> str:
    """Who a fairness figure counts ("leavers", ...: ml's words), in the reader's language."""
    return gettext(word) if word in MEASURED_ON_WORDS else word


@register.filter
def job_stage(stage: str) -> str:
    """A job's current step in the reader's language (a step no catalogue knows, as stored)."""
    for pattern, sentence in NUMBERED_JOB_STAGES:
        match = pattern.fullmatch(stage or "")
        if match:
            return gettext(sentence) % match.groupdict()
    return gettext(stage) if stage else ""


# The counts a retrain or rescore job keeps (Job.counts keys: RescoreOutcome.counts, the retrain's).
JOB_COUNTS = {
    "current": _("current students"), "scored": _("scored"), "unchanged": _("unchanged"), "flagged": _("flagged"),
    "training_size": _("training students"),
}


@register.filter
def job_count(name: str) -> str:
    return str(JOB_COUNTS.get(name, name))
