"""Reads about institutions and memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import Institution, Job, Membership


def membership_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The user's own memberships: the one cross-institution read a user may make."""
    return Membership.objects.unscoped().filter(user=user).select_related("institution").order_by(
        "institution__name"
    )


def job_list(*, institution: Institution) -> QuerySet[Job]:
    return Job.objects.for_institution(institution).select_related("created_by")
