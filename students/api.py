"""REST API for students and the feature schema (``/api/v1/institutions/<slug>/...``)."""

from __future__ import annotations

import django_filters
from django.core.paginator import Paginator as DjangoPaginator
from django.db import IntegrityError
from django.db.models.manager import BaseManager
from django.http import Http404
from rest_framework import mixins, serializers
from rest_framework.response import Response

from dropout_platform.api_pagination import InstitutionPagination
from institutions.access import access_member_user
from institutions.api.base import InstitutionViewSet
from institutions.api.filters import UtcIsoDateTimeFilter
from institutions.api.representation import (
    choice_strings,
    choice_text,
    current_timezone,
    date_text,
    datetime_text,
    default_formats_active,
    integer,
    text,
)
from institutions.prepared import TenantRows, tenant_row

from . import services
from .feature_values import FeatureValuesInvalid, clean_feature_values
from .models import ChangeSource, EnrolmentStatus, FeatureDefinition, FeatureKind, Outcome, Student
from .selectors import feature_definition_list

_STATUS_STRINGS = choice_strings(EnrolmentStatus.choices)
_OUTCOME_STRINGS = choice_strings(Outcome.choices)


class StudentListSerializer(serializers.ListSerializer):
    """A page of students: the time zone is looked up once per page instead of once per row."""

    def to_representation(self, data):
        child = self.child
        if type(child) is not StudentSerializer or not default_formats_active():
            return super().to_representation(data)
        zone = current_timezone()
        iterable = data.all() if isinstance(data, BaseManager) else data
        return [child.represent(student, zone) for student in iterable]


class StudentSerializer(serializers.ModelSerializer):
    advisor = serializers.IntegerField(source="advisor_id", allow_null=True, required=False)

    class Meta:
        model = Student
        list_serializer_class = StudentListSerializer
        fields = [
            "id", "external_id", "name", "email", "program", "cohort", "status", "outcome", "outcome_date",
            "features", "advisor", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness per institution is checked in validate_external_id (the model-level
        # validator would read every institution's students).
        validators = []

    @property
    def institution(self):
        return self.context["institution"]

    def to_representation(self, student):
        # Hand-written for speed (lists and details are the API's hottest reads): exactly what
        # ModelSerializer.to_representation returns for these fields, without building and
        # walking a field object per value (tests/api/test_fast_representation.py compares).
        # Subclasses, which may change the fields, and non-default formats take DRF's path.
        if type(self) is not StudentSerializer or not default_formats_active():
            return super().to_representation(student)
        return self.represent(student, current_timezone())

    @staticmethod
    def represent(student, zone) -> dict:
        return {
            "id": integer(student.id),
            "external_id": text(student.external_id),
            "name": text(student.name),
            "email": text(student.email),
            "program": text(student.program),
            "cohort": text(student.cohort),
            "status": choice_text(student.status, _STATUS_STRINGS),
            "outcome": choice_text(student.outcome, _OUTCOME_STRINGS),
            "outcome_date": date_text(student.outcome_date),
            "features": student.features,
            "advisor": integer(student.advisor_id),
            "created_at": datetime_text(student.created_at, zone),
            "updated_at": datetime_text(student.updated_at, zone),
        }

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("must not be blank")
        if self.instance is not None and value != self.instance.external_id:
            raise serializers.ValidationError("cannot be changed; it is the key systems sync on")
        if self.instance is None and Student.objects.for_institution(self.institution).filter(
            external_id=value
        ).exists():
            raise serializers.ValidationError("a student with this external_id already exists")
        return value

    def validate_advisor(self, value):
        if value is None:
            return None
        try:
            return access_member_user(institution=self.institution, user_id=value)
        except Http404:
            raise serializers.ValidationError("no such advisor in this institution") from None

    def validate_features(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object mapping feature keys to values")
        try:
            return clean_feature_values(feature_definition_list(institution=self.institution), value)
        except FeatureValuesInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None

    def _service_data(self, validated):
        data = dict(validated)
        if "advisor_id" in data:
            data["advisor"] = data.pop("advisor_id")
        return data

    def create(self, validated_data):
        try:
            student, _ = services.student_save(
                institution=self.institution, student=None, data=self._service_data(validated_data),
                source=ChangeSource.API, actor=self.context["request"].user,
            )
        except IntegrityError:
            raise serializers.ValidationError({"external_id": ["a student with this external_id already exists"]}) \
                from None
        return student

    def update(self, instance, validated_data):
        student, _ = services.student_save(
            institution=self.institution, student=instance, data=self._service_data(validated_data),
            source=ChangeSource.API, actor=self.context["request"].user,
        )
        return student


class StudentFilter(django_filters.FilterSet):
    # Declared explicitly: auto-generated filters introspect the fail-closed default manager.
    status = django_filters.ChoiceFilter(choices=EnrolmentStatus.choices)
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    program = django_filters.CharFilter()
    cohort = django_filters.CharFilter()
    advisor = django_filters.NumberFilter(field_name="advisor_id")
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class StudentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, InstitutionViewSet,
):
    """Students of the institution. ``updated_since`` (ISO 8601) supports incremental sync."""

    model = Student
    serializer_class = StudentSerializer
    filterset_class = StudentFilter
    read_capability = "view_students"
    write_capability = "edit_students"

    def filter_scoped_queryset(self, queryset):
        return queryset.order_by("id")

    def list(self, request, *args, **kwargs):
        queryset = self.get_queryset()
        filtered = self.filter_queryset(queryset)
        # A page of every student (no filters, page numbers) is the API's hottest list: it reads the
        # page through statements built once per process (institutions.prepared.TenantRows), the
        # same rows in the same order as the queryset (tests/api/test_prepared_reads.py); DRF's
        # paginator still validates the page and builds the links. Anything else keeps the ORM.
        rows = TenantRows(Student, self.institution) if filtered is queryset and self._plain_pages(queryset) else None
        page = self.paginate_queryset(filtered if rows is None else rows)
        if page is None:
            return Response(self.get_serializer(filtered, many=True).data)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def _plain_pages(self, queryset) -> bool:
        paginator = self.paginator
        return (
            type(self).filter_scoped_queryset is StudentViewSet.filter_scoped_queryset
            and isinstance(paginator, InstitutionPagination)
            and paginator.django_paginator_class is DjangoPaginator
            and not paginator.wants_cursor(queryset, self.request)
            and self.get_serializer_class() is StudentSerializer
            and default_formats_active()
        )

    def get_object(self):
        # A student by id is the API's hottest read: on GET the row comes through a statement built
        # once per process (institutions.prepared), the same row the scoped queryset would give
        # (tests/api/test_prepared_reads.py), without compiling the ORM's query per request.
        # Writes, and a subclass that narrows the queryset, keep the ORM's path.
        if self.action != "retrieve" or type(self).filter_scoped_queryset is not StudentViewSet.filter_scoped_queryset:
            return super().get_object()
        pk = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        student = tenant_row(Student, institution=self.institution, pk=pk)
        if student is None:
            raise Http404
        self.check_object_permissions(self.request, student)
        return student

    def perform_destroy(self, instance):
        services.student_delete(institution=self.institution, student=instance)


class FeatureDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeatureDefinition
        fields = [
            "id", "key", "label", "kind", "min_value", "max_value", "categories", "unit", "description",
            "protected", "actionable", "position", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []

    def validate_key(self, value):
        institution = self.context["institution"]
        clash = FeatureDefinition.objects.for_institution(institution).filter(key=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("a feature with this key already exists")
        return value

    def validate_categories(self, value):
        if not isinstance(value, list) or not all(isinstance(item, dict) and "value" in item for item in value):
            raise serializers.ValidationError('must be a list of {"value": ..., "label": ...} objects')
        return [{"value": str(item["value"]), "label": str(item.get("label") or item["value"])} for item in value]

    def validate(self, attrs):
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        low = attrs.get("min_value", getattr(self.instance, "min_value", None))
        high = attrs.get("max_value", getattr(self.instance, "max_value", None))
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_value": ["must not be greater than max_value"]})
        if kind != FeatureKind.CATEGORICAL and attrs.get("categories"):
            raise serializers.ValidationError({"categories": ["only categorical features have categories"]})
        return attrs

    def create(self, validated_data):
        return services.feature_definition_save(
            institution=self.context["institution"], definition=None, data=validated_data
        )

    def update(self, instance, validated_data):
        return services.feature_definition_save(
            institution=self.context["institution"], definition=instance, data=validated_data
        )


class FeatureDefinitionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    InstitutionViewSet,
):
    """The institution's feature schema: what each student value means and which values are valid."""

    model = FeatureDefinition
    serializer_class = FeatureDefinitionSerializer
    read_capability = "view_aggregates"
    write_capability = "manage_data"
    pagination_class = None
