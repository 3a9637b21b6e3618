"""Template helpers of the worklists (flagged list and caseload)."""

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()


@register.simple_tag
def worklist_columns():
    """(sort key or "", header) for the worklist table, in display order."""
    return [("name", _("Student")), ("program", _("Program")), ("cohort", _("Cohort")), ("risk", _("Risk")),
            ("", _("Rank")), ("", _("Flags")), ("", _("Advisor")), ("last_contact", _("Last contact")),
            ("follow_up", _("Next follow-up"))]
