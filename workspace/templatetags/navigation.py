"""The layout's menu (grouped by job) and each page's title: see workspace/navigation.py."""

from django import template

from workspace.navigation import navigation_for, page_title

register = template.Library()


def _url_name(context) -> str | None:
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    return match.url_name if match else None


@register.simple_tag(takes_context=True)
def main_navigation(context):
    institution = context.get("institution")
    if institution is None:
        return []
    return navigation_for(membership=context.get("membership"), institution_slug=institution.slug,
                          url_name=_url_name(context))


@register.simple_tag(takes_context=True)
def current_page_title(context):
    return page_title(_url_name(context), context=context)
