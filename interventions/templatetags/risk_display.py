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
