"""``{{ kind|row_kind }}``: an erasure's kind of rows in the page's language (privacy/row_kinds.py)."""

from django import template

from privacy.row_kinds import row_kind_label

register = template.Library()


@register.filter
def row_kind(kind) -> str:
    return row_kind_label(str(kind))
