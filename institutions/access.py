"""Resolve the current institution from the URL and check the caller may act in it.

Every id that comes from user input goes through an ``access_*`` helper that takes the
institution; another institution's object raises exactly what a missing one raises (Http404).
"""

from __future__ import annotations

from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy

from .models import Institution, Membership
from .scoping import ViewerRestriction

User = get_user_model()
ModelT = TypeVar("ModelT", bound=Model)

NOT_FOUND_MESSAGE = gettext_lazy("Not found.")

# Every primary key is a positive 64-bit integer (BigAutoField); a larger number from user input
# cannot name a row, and the database drivers refuse to even compare with it.
LARGEST_ID = 2**63 - 1


def is_possible_id(value: int) -> bool:
    return 0 < value <= LARGEST_ID


def access_membership(*, user: AbstractBaseUser | AnonymousUser, institution_slug: str) -> Membership:
    """The user's membership in the institution named by the URL, or Http404.

    A missing institution and one the user does not belong to are indistinguishable, so URLs
    cannot be used to discover which institutions exist. Superusers are not members by default.
    """
    if not user.is_authenticated or not user.is_active:
        raise Http404(NOT_FOUND_MESSAGE)
    membership = (
        Membership.objects.unscoped()
        .select_related("institution")
        .filter(user=user, institution__slug=institution_slug)
        .first()
    )
    if membership is None:
        raise Http404(NOT_FOUND_MESSAGE)
    return membership


def viewer_restriction_for(membership: Membership | None) -> ViewerRestriction | None:
    """What narrows this member's reads: need-to-know access, when their institution turned it on
    and their role sees students but not all of them (advisors). None: nothing (administrators,
    viewers, who see no student, API keys, and every member of an institution with it off)."""
    if membership is None or not membership.institution.need_to_know_access:
        return None
    if not membership.can("view_students") or membership.can("view_all_students"):
        return None
    return ViewerRestriction(institution_id=membership.institution_id, user_id=membership.user_id)


def access_member_user(*, institution: Institution, user_id: int | str | None) -> User | None:
    """A user who is a member of ``institution``; any other id is treated as not found."""
    if user_id in (None, ""):
        return None
    # One membership per (institution, user): the join yields at most one row.
    return object_for_input_id(User.objects.filter(is_active=True, memberships__institution=institution), user_id)


def id_from_input(value) -> int | None:
    """The id ``value`` (from a URL or a body) names, or None when it cannot name a row."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if is_possible_id(number) else None


def object_for_input_id(queryset: QuerySet[ModelT], value, *, field: str = "pk") -> ModelT:
    """The row of an institution-bound ``queryset`` whose ``field`` is the id ``value`` from input.

    The shared core of the ``access_<entity>`` selectors: a missing row, a row the queryset does
    not hold (another institution's) and a value that cannot be an id all raise the same Http404.
    """
    number = id_from_input(value)
    if number is None:
        raise Http404(NOT_FOUND_MESSAGE)
    try:
        return queryset.get(**{field: number})
    except queryset.model.DoesNotExist:
        raise Http404(NOT_FOUND_MESSAGE) from None
