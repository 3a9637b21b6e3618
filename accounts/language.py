"""Which language a request's pages are in (docs/translating.md).

The member's own choice (UserPreference.language) wins; then the default of the institution the
page belongs to (Institution.default_language, only when the user is a member of it); on pages
outside an institution, the default their institutions agree on; then the browser's
Accept-Language (Django's LocaleMiddleware, earlier in the chain); then English. Everything is
read from the database for each request, never kept per process, so one person's choice cannot
reach another's page.

Emails follow the same decision for their recipient (:func:`recipient_language`), with English in
place of the browser's (an email has no browser), so that a digest, a survey link or an
invitation reads as the recipient's pages do.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from institutions.models import Institution, Membership

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


def recipient_language(*, institution: Institution | None, user: AbstractBaseUser | None = None) -> str:
    """The language of an email about ``institution`` to ``user``: the language of their pages there
    (:func:`language_for`), else English. ``user=None`` is someone without an account (an invitee, an
    instructor): the institution's default. ``institution=None`` (a password reset): the default all
    the user's institutions share."""
    if user is not None:
        language = language_for(user, institution.slug if institution is not None else None)
    else:
        language = institution.default_language if institution is not None else None
    return language if language in SUPPORTED else settings.LANGUAGE_CODE


def recipient_languages(*, institution: Institution, user_ids: Iterable[int]) -> dict[int, str]:
    """:func:`recipient_language` of many users of one institution in two queries (a digest run)."""
    ids = set(user_ids)
    if not ids:
        return {}
    chosen = dict(UserPreference.objects.filter(user_id__in=ids, language__in=SUPPORTED)
                  .values_list("user_id", "language"))
    members = set(Membership.objects.for_institution(institution).filter(user_id__in=ids, user__is_active=True)
                  .values_list("user_id", flat=True))
    default = institution.default_language if institution.default_language in SUPPORTED else settings.LANGUAGE_CODE
    return {uid: chosen.get(uid) or (default if uid in members else settings.LANGUAGE_CODE) for uid in ids}


def language_choose(*, user: AbstractBaseUser, language: str) -> UserPreference:
    """Record the user's own language ("" to follow their institution's default again). Another
    person's preference cannot be named: the row is the signed-in user's own."""
    if language and language not in SUPPORTED:
        raise ValidationError(_("Choose one of the languages offered."))
    preference, _created = UserPreference.objects.update_or_create(
        user=user, defaults={"language": language or None})
    return preference
