"""Writes about institutions and who belongs to them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _

from .models import Institution, Membership, Role
from .signals import institution_created, membership_removed

User = get_user_model()


@transaction.atomic
def institution_create(*, slug: str, name: str, timezone: str = "UTC") -> Institution:
    institution = Institution(slug=slug, name=name, timezone=timezone)
    institution.full_clean()
    institution.save()
    institution_created_announce(institution=institution)
    return institution


def institution_created_announce(*, institution: Institution) -> None:
    """Let the apps above set up a new institution (institutions never imports them).

    Called by :func:`institution_create`, and by the admin, which saves its form's own instance."""
    institution_created.send(sender=Institution, institution=institution)


class MembershipError(ValidationError):
    """A membership change that would leave the institution in a bad state."""


def _admins_left_after(institution: Institution, membership: Membership) -> int:
    return Membership.objects.for_institution(institution).filter(role=Role.ADMIN).exclude(
        pk=membership.pk
    ).count()


@transaction.atomic
def membership_change_role(*, institution: Institution, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise MembershipError(f"Unknown role {role!r}.")
    if membership.institution_id != institution.pk:
        raise MembershipError(_("That membership belongs to another institution."))
    if membership.role == Role.ADMIN and role != Role.ADMIN and _admins_left_after(institution, membership) == 0:
        raise MembershipError(_("An institution needs at least one administrator; promote someone else first."))
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def membership_remove(*, institution: Institution, membership: Membership, actor: AbstractBaseUser) -> None:
    """Remove a member. Their students stay, without an advisor, for an admin to reassign."""
    if membership.institution_id != institution.pk:
        raise MembershipError(_("That membership belongs to another institution."))
    if membership.role == Role.ADMIN and _admins_left_after(institution, membership) == 0:
        raise MembershipError(_("An institution needs at least one administrator; promote someone else first."))
    user_id = membership.user_id
    membership.delete()
    # Higher apps react (students: unassign the caseload) without institutions importing them.
    membership_removed.send(sender=Membership, institution=institution, user_id=user_id, actor=actor)


def institution_set_need_to_know(*, institution: Institution, enabled: bool, actor: AbstractBaseUser) -> bool:
    """Turn need-to-know access on or off, recording who and when; False when it was already so."""
    if institution.need_to_know_access == enabled:
        return False
    institution.need_to_know_access = enabled
    institution.need_to_know_changed_at = timezone_now()
    institution.need_to_know_changed_by = actor
    institution.save(update_fields=["need_to_know_access", "need_to_know_changed_at", "need_to_know_changed_by",
                                    "updated_at"])
    return True


def institution_set_default_language(*, institution: Institution, language: str) -> bool:
    """The language of the members' pages who chose none of their own (docs/translating.md);
    False when it was already so. Raises ValidationError for a language the platform does not offer."""
    from django.conf import settings
    from django.utils.translation import gettext

    if language not in {code for code, _name in settings.LANGUAGES}:
        raise ValidationError(gettext("Choose one of the languages offered."))
    if institution.default_language == language:
        return False
    institution.default_language = language
    institution.save(update_fields=["default_language", "updated_at"])
    return True
