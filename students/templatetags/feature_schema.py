"""How the schema page shows a field's old and new value in a change."""

from __future__ import annotations

from django import template

register = template.Library()

FIELD_NAMES = {
    "label": "label", "description": "description", "unit": "unit", "min_value": "minimum",
    "max_value": "maximum", "categories": "categories", "protected": "protected", "actionable": "actionable",
    "retired": "retired", "created": "created with key",
    "seen_in_file": "range seen in the file",
}


@register.filter
def schema_field(name: str) -> str:
    return FIELD_NAMES.get(name, name)


@register.filter
def schema_value(value) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        shown = ", ".join(str(item.get("value")) if isinstance(item, dict) else str(item) for item in value[:8])
        return f"{len(value)} categories ({shown}{', ...' if len(value) > 8 else ''})" if value else "any value"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


@register.filter
def schema_number(value) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
