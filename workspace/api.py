"""REST API of the signed-in member's notifications: ``/api/v1/institutions/<slug>/notifications/``
(list, ``?unread=true``; ``POST .../<id>/read/``; ``POST .../read-all/``).

Notifications belong to a person. An API key acts for its institution, not for anyone, so it has
none: a key is answered 403 with a message saying so (session sign-in only)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from institutions.api.base import HasInstitutionCapability, InstitutionViewSet
from institutions.api.filters import StrictBooleanFilter

from . import notifications
from .models import Notification, NotificationKind

API_KEY_REFUSED = ("Notifications belong to a signed-in person; an API key acts for the institution, not for a "
                   "person, so it has none. Sign in to the web app and use its session to read yours.")


class SignedInPersonOnly(permissions.BasePermission):
    message = API_KEY_REFUSED

    def has_permission(self, request, view) -> bool:
        return not getattr(request.auth, "is_api_key", False)


class NotificationSerializer(serializers.ModelSerializer):
    student = serializers.IntegerField(source="student_id", read_only=True, allow_null=True,
                                       help_text="The student it is about (null: none)")
    alert = serializers.IntegerField(source="alert_id", read_only=True, allow_null=True)
    url = serializers.CharField(read_only=True, help_text="The page it leads to, inside this institution")
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "url", "student", "alert", "created_at", "read_at", "is_read"]
        read_only_fields = fields

    def get_is_read(self, obj) -> bool:
        return obj.read_at is not None


class NotificationFilter(django_filters.FilterSet):
    unread = StrictBooleanFilter(field_name="read_at", lookup_expr="isnull", help_text="true: unread only")
    kind = django_filters.ChoiceFilter(choices=NotificationKind.choices)


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """The signed-in member's notifications in this institution, newest first."""

    model = Notification
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    # Every member has their own; marking one's own read changes no institution data.
    read_capability = "view_aggregates"
    write_capability = "view_aggregates"

    def get_permissions(self):
        return [permissions.IsAuthenticated(), SignedInPersonOnly(), HasInstitutionCapability()]

    def filter_scoped_queryset(self, queryset):
        return queryset.filter(user_id=self.request.user.pk).order_by("-created_at", "-id")

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, *args, **kwargs):
        """Mark one notification read."""
        try:
            notification = notifications.notification_open(
                institution=self.institution, user=request.user, notification_id=kwargs["pk"])
        except notifications.NotificationNotFound:
            raise NotFound(_("No such notification.")) from None
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=inline_serializer(
        "NotificationsMarkedRead", {"marked": serializers.IntegerField(help_text="How many were unread")}))
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request, *args, **kwargs):
        """Mark every unread notification of yours in this institution read."""
        marked = notifications.notifications_mark_all_read(institution=self.institution, user=request.user)
        return Response({"marked": marked})
