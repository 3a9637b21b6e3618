"""Which language a request's pages are in (docs/translating.md).

The member's own choice (UserPreference.language) wins; then the default of the institution the
page belongs to (Institution.default_language, only when the user is a member of it); on pages
outside an institution, the default their institutions agree on; then the browser's
Accept-Language (Django's LocaleMiddleware, earlier in the chain); then English. Everything is
read from the database for each request, never kept per process, so one person's choice cannot
reach another's page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from institutions.models import Membership

from .models import UserPreference

SUPPORTED = {code for code, _name in settings.LANGUAGES}


def chosen_language(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The user's own choice, or None (they follow their institution's default)."""
    if not user.is_authenticated:
        return None
    language = UserPreference.objects.filter(user=user).values_list("language", flat=True).first()
    return language if language in SUPPORTED else None


def institution_language(user: AbstractBaseUser | AnonymousUser, institution_slug: str | None) -> str | None:
    """The default language of the page's institution when the user belongs to it; outside an
    institution, the default all the user's institutions share (None when they differ)."""
    if not user.is_authenticated or not user.is_active:
        return None
    memberships = Membership.objects.unscoped().filter(user=user)
    if institution_slug is not None:
        memberships = memberships.filter(institution__slug=institution_slug)
    defaults = set(memberships.values_list("institution__default_language", flat=True)[:50])
    if len(defaults) == 1:
        language = defaults.pop()
        return language if language in SUPPORTED else None
    return None


def language_for(user, institution_slug: str | None) -> str | None:
    """The language this user's page is in, before the browser's: None means "the browser's"."""
    return chosen_language(user) or institution_language(user, institution_slug)


def language_choose(*, user: AbstractBaseUser, language: str) -> UserPreference:
    """Record the user's own language ("" to follow their institution's default again). Another
    person's preference cannot be named: the row is the signed-in user's own."""
    if language and language not in SUPPORTED:
        raise ValidationError(_("Choose one of the languages offered."))
    preference, _created = UserPreference.objects.update_or_create(
        user=user, defaults={"language": language or None})
    return preference
