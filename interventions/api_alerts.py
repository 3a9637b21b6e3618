"""REST API for alerts (list, retrieve, and the actions of working one), offices and routing rules (read-only).

``/api/v1/institutions/<slug>/alerts/`` (``POST .../<id>/acknowledge|contact|refer|note|close/``),
``.../offices/`` and ``.../alert-rules/``. Alerts of students a member may not see (need-to-know access)
are missing here as on the pages.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.models import AccessAction
from audit.recording import AccessRecordedAPIMixin
from institutions.api.base import InstitutionViewSet
from institutions.api.filters import IdFilter, UtcIsoDateTimeFilter

from . import alerts, selectors
from .models import Alert, AlertEvent, AlertOutcome, AlertRule, AlertSource, AlertStatus, Office
from .services import InterventionRuleError


def _rule_error(exc: InterventionRuleError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.errors)


class AlertEventSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(source="actor_id", read_only=True, allow_null=True)
    to_user = serializers.IntegerField(source="to_user_id", read_only=True, allow_null=True)
    to_office = serializers.IntegerField(source="to_office_id", read_only=True, allow_null=True)

    class Meta:
        model = AlertEvent
        fields = ["id", "kind", "actor", "note", "to_user", "to_office", "at"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    student = serializers.IntegerField(source="student_id", read_only=True)
    concern_type = serializers.IntegerField(source="concern_type_id", read_only=True)
    concern_type_key = serializers.CharField(source="concern_type.key", read_only=True)
    raised_by_user = serializers.IntegerField(source="raised_by_user_id", read_only=True, allow_null=True)
    raised_by_instructor = serializers.IntegerField(source="raised_by_instructor_id", read_only=True,
                                                    allow_null=True)
    section = serializers.IntegerField(source="section_id", read_only=True, allow_null=True)
    assigned_user = serializers.IntegerField(source="assigned_user_id", read_only=True, allow_null=True)
    assigned_office = serializers.IntegerField(source="assigned_office_id", read_only=True, allow_null=True)
    closed_by = serializers.IntegerField(source="closed_by_id", read_only=True, allow_null=True)
    outcome = serializers.ChoiceField(choices=AlertOutcome.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "student", "concern_type", "concern_type_key", "source", "comment", "raised_by_user",
            "raised_by_instructor", "section", "assigned_user", "assigned_office", "status", "outcome",
            "outcome_notes", "closed_at", "closed_by", "raiser_told_at", "created_at", "updated_at",
        ]
        read_only_fields = fields


class AlertDetailSerializer(AlertSerializer):
    events = serializers.SerializerMethodField()

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "events"]
        read_only_fields = fields

    @extend_schema_field(AlertEventSerializer(many=True))
    def get_events(self, obj) -> list[dict]:
        events = selectors.alert_events(institution=self.context["institution"], alert=obj)
        return AlertEventSerializer(events, many=True).data


class AlertNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class AlertContactSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000, help_text="How the student was contacted")


class AlertReferSerializer(serializers.Serializer):
    to_user = serializers.IntegerField(required=False, allow_null=True, help_text="User id of a member; or:")
    to_office = serializers.IntegerField(required=False, allow_null=True, help_text="Id of one of the offices")
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class AlertCloseSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=AlertOutcome.choices)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=20000)


class AlertFilter(django_filters.FilterSet):
    student = IdFilter(field_name="student_id")
    assigned_user = IdFilter(field_name="assigned_user_id")
    assigned_office = IdFilter(field_name="assigned_office_id")
    concern_type = IdFilter(field_name="concern_type_id")
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    source = django_filters.ChoiceFilter(choices=AlertSource.choices)
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class AlertViewSet(AccessRecordedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """Alerts: concerns raised about students, where they were routed, and how they were worked."""

    access_reads = {"list": AccessAction.API_ALERT_LIST, "retrieve": AccessAction.API_ALERT_READ}

    model = Alert
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    read_capability = "view_students"
    write_capability = "edit_interventions"

    def get_serializer_class(self):
        return AlertDetailSerializer if self.action != "list" else AlertSerializer

    def filter_scoped_queryset(self, queryset):
        return selectors.alert_list(institution=self.institution).order_by("-created_at", "-id")

    def access_object(self, object_id):
        return selectors.access_alert(institution=self.institution, alert_id=object_id)

    def _act(self, serializer_class, work):
        alert = self.get_object()
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        try:
            work({"institution": self.institution, "alert": alert, "user": self.request.user,
                      "membership": self.access.membership}, serializer.validated_data)
        except InterventionRuleError as exc:
            raise _rule_error(exc) from None
        fresh = selectors.alert_list(institution=self.institution).filter(pk=alert.pk).first() or alert
        return Response(AlertDetailSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(request=AlertNoteSerializer, responses=AlertDetailSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        """The assignee (or an administrator) takes the alert on."""
        return self._act(AlertNoteSerializer, lambda c, d: alerts.alert_acknowledge(**c, note=d.get("note", "")))

    @extend_schema(request=AlertContactSerializer, responses=AlertDetailSerializer)
    @action(detail=True, methods=["post"])
    def contact(self, request, *args, **kwargs):
        """Record contact with the student."""
        return self._act(AlertContactSerializer, lambda c, d: alerts.alert_record_contact(**c, note=d["note"]))

    @extend_schema(request=AlertReferSerializer, responses=AlertDetailSerializer)
    @action(detail=True, methods=["post"])
    def refer(self, request, *args, **kwargs):
        """Refer the alert to another office or person (they are told)."""
        return self._act(AlertReferSerializer, lambda c, d: alerts.alert_refer(
            **c, to_user_id=d.get("to_user"), to_office_id=d.get("to_office"), note=d.get("note", "")))

    @extend_schema(request=AlertContactSerializer, responses=AlertDetailSerializer)
    @action(detail=True, methods=["post"])
    def note(self, request, *args, **kwargs):
        """Add a note to the alert's history."""
        return self._act(AlertContactSerializer, lambda c, d: alerts.alert_add_note(**c, note=d["note"]))

    @extend_schema(request=AlertCloseSerializer, responses=AlertDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, *args, **kwargs):
        """Close with an outcome; an instructor who raised it is emailed the outcome's category."""
        return self._act(AlertCloseSerializer, lambda c, d: alerts.alert_close(
            **c, outcome=d["outcome"], notes=d.get("notes", "")))


class OfficeSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Office
        fields = ["id", "name", "email", "description", "is_active", "members", "created_at", "updated_at"]
        read_only_fields = fields

    def get_members(self, obj) -> list[int]:
        return alerts.office_member_ids(institution=self.context["institution"], office_id=obj.pk)


class OfficeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """Offices that take alerts, with their members' user ids."""

    model = Office
    serializer_class = OfficeSerializer
    read_capability = "view_students"
    pagination_class = None

    def filter_scoped_queryset(self, queryset):
        return queryset.order_by("name", "id")

    def access_object(self, object_id):
        return selectors.access_office(institution=self.institution, office_id=object_id)


class AlertRuleSerializer(serializers.ModelSerializer):
    concern_type = serializers.IntegerField(source="concern_type_id", read_only=True, allow_null=True)
    user = serializers.IntegerField(source="user_id", read_only=True, allow_null=True)
    office = serializers.IntegerField(source="office_id", read_only=True, allow_null=True)

    class Meta:
        model = AlertRule
        fields = ["id", "position", "concern_type", "program", "target", "user", "office", "is_active",
                  "created_at", "updated_at"]
        read_only_fields = fields


class AlertRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """The routing rules in order: the first active one matching an alert decides where it goes."""

    model = AlertRule
    serializer_class = AlertRuleSerializer
    read_capability = "view_students"
    pagination_class = None

    def filter_scoped_queryset(self, queryset):
        return queryset.order_by("position", "id")

    def access_object(self, object_id):
        return selectors.access_alert_rule(institution=self.institution, rule_id=object_id)
