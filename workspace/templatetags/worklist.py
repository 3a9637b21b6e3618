"""Template helpers of the worklists (flagged list and caseload)."""

from django import template

register = template.Library()


@register.simple_tag
def worklist_columns():
    """(sort key or "", header) for the worklist table, in display order."""
    return [("name", "Student"), ("program", "Program"), ("cohort", "Cohort"), ("risk", "Risk"), ("", "Rank"),
            ("", "Flags"), ("", "Advisor"), ("last_contact", "Last contact"), ("follow_up", "Next follow-up")]
