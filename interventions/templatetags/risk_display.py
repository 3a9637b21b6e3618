"""How risk is written on pages: a percentage with one decimal, and the band's CSS class."""

from django import template

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.2345 -> "23.5%"; missing -> an em dash."""
    if value is None or value == "":
        return "—"
    return f"{100 * float(value):.{int(digits)}f}%"


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
    """Signed percentage points of the shown risk: 12.34 -> "+12.3 points"; missing -> an em dash."""
    if value is None or value == "":
        return "—"
    number = float(value)
    return f"{'+' if number > 0 else '−' if number < 0 else ''}{abs(number):.1f} points"
