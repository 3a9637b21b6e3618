"""How the schema page shows a field's old and new value in a change."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from students.feature_translations import language_name, translation_field

register = template.Library()

FIELD_NAMES = {
    "label": _("label"), "description": _("description"), "unit": _("unit"), "min_value": _("minimum"),
    "max_value": _("maximum"), "categories": _("categories"), "protected": _("protected"),
    "actionable": _("actionable"), "retired": _("retired"), "known_from": _("known from"),
    "created": _("created with key"),
    "seen_in_file": _("range seen in the file"),
}


@register.filter
def schema_field(name: str) -> str:
    translated = translation_field(name)
    if translated:  # label_es -> "label (Español)"
        return f"{FIELD_NAMES.get(translated[0], translated[0])!s} ({language_name(translated[1])})"
    return str(FIELD_NAMES.get(name, name))


@register.filter
def schema_value(value) -> str:
    if value is None or value == "":
        return gettext("(none)")
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        if not value:
            return gettext("any value")
        shown = ", ".join(str(item.get("value")) if isinstance(item, dict) else str(item) for item in value[:8])
        if len(value) > 8:
            shown += ", ..."
        return ngettext("%(count)s category (%(values)s)", "%(count)s categories (%(values)s)",
                        len(value)) % {"count": len(value), "values": shown}
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


@register.filter
def schema_number(value) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
