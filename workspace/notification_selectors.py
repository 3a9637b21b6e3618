"""Reads of a member's notifications and digest choice, always of one institution and one member."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from institutions.models import Institution

from .models import DigestFrequency, Notification, NotificationPreference


def notification_list(*, institution: Institution, user: AbstractBaseUser, unread: bool = False
                      ) -> QuerySet[Notification]:
    """The member's notifications in ``institution``, newest first (unread only if asked)."""
    queryset = Notification.objects.for_institution(institution).filter(user_id=user.pk)
    if unread:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset.order_by("-created_at", "-id")


def notification_unread_count(*, institution: Institution, user: AbstractBaseUser) -> int:
    """What the bell shows: one COUNT on the (institution, user, read_at) index."""
    return notification_list(institution=institution, user=user, unread=True).count()


def notification_preference_get(*, institution: Institution, user: AbstractBaseUser) -> NotificationPreference:
    """The member's digest choice here (unsaved, the default daily, while they never chose)."""
    found = NotificationPreference.objects.for_institution(institution).filter(user_id=user.pk).first()
    return found or NotificationPreference(institution=institution, user_id=user.pk, digest=DigestFrequency.DAILY)
