"""How risk is written on pages: a percentage with one decimal in the page's language ("23.5%",
"23,5%"), and the band's CSS class."""

from django import template
from django.utils.translation import gettext

from institutions.locale_numbers import local_decimal

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.2345 -> "23.5%"; missing -> an em dash."""
    if value is None or value == "":
        return "—"
    return f"{local_decimal(100 * float(value), digits)}%"


@register.filter
def band_class(band) -> str:
    return {"high": "text-bg-danger", "medium": "text-bg-warning", "low": "text-bg-success"}.get(
        str(band or ""), "text-bg-secondary"
    )


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "") if mapping else ""


@register.filter
def person(user, fallback: str = "unknown") -> str:
    """A user's full name, else username, else ``fallback`` (deleted users, the model)."""
    if user is None:
        return fallback
    return user.get_full_name() or user.get_username()


@register.filter
def points(value) -> str:
    """Signed percentage points of the shown risk: 12.34 -> "+12.3 points" ("+12,3 puntos"); missing
    -> an em dash."""
    if value is None or value == "":
        return "—"
    number = float(value)
    sign = "+" if number > 0 else "−" if number < 0 else ""
    return gettext("%(points)s points") % {"points": sign + local_decimal(abs(number), 1)}
