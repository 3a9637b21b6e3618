"""The bell in the top navigation: the signed-in member's unread notifications in this institution."""

from django import template

from workspace.notification_selectors import notification_unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    """One COUNT per page, for this member and this institution only (nothing cached across users)."""
    institution = context.get("institution")
    request = context.get("request")
    user = getattr(request, "user", None)
    if institution is None or user is None or not user.is_authenticated or context.get("membership") is None:
        return 0
    return notification_unread_count(institution=institution, user=user)
