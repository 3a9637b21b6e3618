"""LMS activity over the API: bulk events in, derived features recomputed by a job (scope ``activity``)."""

from __future__ import annotations

import django_filters
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.models import AccessAction
from audit.recording import AccessRecordedAPIMixin
from institutions.api.base import InstitutionViewSet
from institutions.api.filters import UtcIsoDateTimeFilter
from institutions.api.serializers import JobSerializer
from institutions.jobs import job_create, job_dispatch
from institutions.models import JobKind

from . import tasks  # noqa: F401 - registers the activity job runner
from .activity import MAX_EVENTS_PER_REQUEST, ActivityEventsInvalid, activity_events_ingest
from .models import ActivityEvent, Student


class ActivityEventSerializer(serializers.ModelSerializer):
    student = serializers.CharField(source="student.external_id", read_only=True)
    type = serializers.CharField(source="kind", read_only=True)
    timestamp = serializers.DateTimeField(source="occurred_at", read_only=True)
    id = serializers.CharField(source="event_id", read_only=True)

    class Meta:
        model = ActivityEvent
        fields = ["id", "student", "timestamp", "type", "course", "count", "created_at"]
        read_only_fields = fields


class ActivityEventInSerializer(serializers.Serializer):
    """One event as an LMS sends it (documentation of the bulk body; validated all-or-nothing)."""

    student = serializers.CharField(max_length=100, help_text="The student's external id")
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with a time zone offset")
    type = serializers.CharField(max_length=32, help_text="view, submit, forum, login, quiz, ...")
    course = serializers.CharField(max_length=100, required=False, allow_blank=True)
    count = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=1)
    id = serializers.CharField(max_length=100, required=False, allow_blank=True,
                               help_text="The LMS's event id: re-sending it is a no-op")


class ActivityBulkSerializer(serializers.Serializer):
    events = ActivityEventInSerializer(many=True, min_length=1, max_length=MAX_EVENTS_PER_REQUEST,
                                       help_text=f"1 to {MAX_EVENTS_PER_REQUEST} events")


class ActivityRecomputeSerializer(serializers.Serializer):
    term_start = serializers.DateField()
    term_end = serializers.DateField()
    as_of = serializers.DateTimeField(required=False, help_text="Reference time for days since last activity")

    def validate(self, attrs):
        if attrs["term_end"] < attrs["term_start"]:
            raise serializers.ValidationError({"term_end": [_("must not be before term_start")]})
        return attrs


class ActivityEventFilter(django_filters.FilterSet):
    student = django_filters.CharFilter(field_name="student__external_id", help_text="External id")
    since = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    type = django_filters.CharFilter(field_name="kind")


class ActivityEventViewSet(AccessRecordedAPIMixin, mixins.ListModelMixin, InstitutionViewSet):
    """Learning-platform activity. POST a batch of events; then recompute the derived features."""

    model = ActivityEvent
    serializer_class = ActivityEventSerializer
    filterset_class = ActivityEventFilter
    read_capability = "view_students"
    write_capability = "edit_students"
    access_reads = {"list": AccessAction.API_ACTIVITY_LIST}
    access_student_parameter = None

    def access_details(self, request, data) -> dict:
        # ``student`` is an external id here: the entry keeps the student's number, never the id text.
        details = super().access_details(request, data)
        external_id = details["filters"].pop("student", None)
        if isinstance(external_id, str):
            details["student_id"] = Student.objects.for_institution(self.institution).filter(
                external_id=external_id).values_list("pk", flat=True).first()
        return details

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("student").order_by("occurred_at", "id")

    @extend_schema(
        request=ActivityBulkSerializer,
        responses={201: inline_serializer("ActivityIngestResult", {
            "received": serializers.IntegerField(), "created": serializers.IntegerField(),
            "duplicates": serializers.IntegerField()})},
    )
    def create(self, request, *args, **kwargs):
        events = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(events, list):
            raise serializers.ValidationError({"events": [_("required: a list of events")]})
        try:
            result = activity_events_ingest(institution=self.institution, events=events)
        except ActivityEventsInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None
        return Response({"received": result.received, "created": result.created, "duplicates": result.duplicates},
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=ActivityRecomputeSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"], url_path="recompute-features")
    def recompute_features(self, request, *args, **kwargs):
        params = ActivityRecomputeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job, _created = job_create(
            institution=self.institution, kind=JobKind.ACTIVITY_FEATURES, triggered_by="api",
            params={key: value.isoformat() for key, value in params.validated_data.items()},
            created_by=request.user, join_active=True,
        )
        job_dispatch(job)
        job.refresh_from_db()
        response = Response(JobSerializer(job, context=self.get_serializer_context()).data,
                            status=status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("api-job-detail", args=[self.institution.slug, job.pk])
        return response
