"""REST API for students and the feature schema (``/api/v1/institutions/<slug>/...``)."""

from __future__ import annotations

import django_filters
from django.db import IntegrityError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import mixins, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from audit.models import AccessAction
from audit.recording import AccessRecordedAPIMixin
from institutions.access import NOT_FOUND_MESSAGE, access_member_user
from institutions.api.base import InstitutionViewSet
from institutions.api.filters import IdFilter, UtcIsoDateTimeFilter

from . import orm_bypass, services
from .feature_translations import translation_fields_from_object, translations_object
from .feature_values import FeatureValuesInvalid, clean_feature_values
from .models import ChangeSource, EnrolmentStatus, FeatureDefinition, FeatureKind, FeatureStage, Outcome, Student
from .selectors import access_feature_definition, access_student, feature_definition_list
from .stages import feature_stage_list, feature_stage_of, feature_stages_ensure


class StudentSerializer(serializers.ModelSerializer):
    advisor = serializers.IntegerField(source="advisor_id", allow_null=True, required=False)

    class Meta:
        model = Student
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

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError(_("must not be blank"))
        if self.instance is not None and value != self.instance.external_id:
            raise serializers.ValidationError(_("cannot be changed; it is the key systems sync on"))
        if self.instance is None and Student.objects.for_institution(self.institution).filter(
            external_id=value
        ).exists():
            raise serializers.ValidationError(_("a student with this external_id already exists"))
        return value

    def validate_advisor(self, value):
        if value is None:
            return None
        try:
            return access_member_user(institution=self.institution, user_id=value)
        except Http404:
            raise serializers.ValidationError(_("no such advisor in this institution")) from None

    def validate_features(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("must be an object mapping feature keys to values"))
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
            student, _created = services.student_save(
                institution=self.institution, student=None, data=self._service_data(validated_data),
                source=ChangeSource.API, actor=self.context["request"].user,
            )
        except IntegrityError:
            raise serializers.ValidationError({"external_id": [_("a student with this external_id already exists")]}) \
                from None
        return student

    def update(self, instance, validated_data):
        student, _created = services.student_save(
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
    advisor = IdFilter(field_name="advisor_id")
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class StudentViewSet(
    AccessRecordedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    mixins.UpdateModelMixin, mixins.DestroyModelMixin, InstitutionViewSet,
):
    """Students of the institution. ``updated_since`` (ISO 8601) supports incremental sync."""

    model = Student
    serializer_class = StudentSerializer
    filterset_class = StudentFilter
    read_capability = "view_students"
    write_capability = "edit_students"
    access_reads = {"list": AccessAction.API_STUDENT_LIST, "retrieve": AccessAction.API_STUDENT_READ}
    access_student_field = "id"
    access_student_parameter = None
    # Page numbers all the way (a deferred join keeps deep pages cheap; students.orm_bypass serves
    # the unfiltered pages): integrations browse students by page number.
    keyset_pagination = False

    def filter_scoped_queryset(self, queryset):
        return queryset.order_by("id")

    def access_object(self, object_id):
        return access_student(institution=self.institution, student_id=object_id)

    # A student by id and an unfiltered page of students are the API's hottest reads: they come
    # through students.orm_bypass (plain statements bound to the institution, a hand-written
    # representation equal to StudentSerializer's; see there for why and for its equality tests).
    # Filters, the sync cursor, a subclass that narrows the queryset or changes the serializer,
    # and every write keep the ORM and the serializer.
    reads_bypass_orm = True

    def retrieve(self, request, *args, **kwargs):
        if not self._reads_bypass_orm():
            return super().retrieve(request, *args, **kwargs)
        student = orm_bypass.student_read(
            institution=self.institution, student_id=self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        )
        if student is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        return Response(student)

    def list(self, request, *args, **kwargs):
        if not self._reads_bypass_orm() or self._list_is_filtered(request):
            return super().list(request, *args, **kwargs)
        return self.get_paginated_response(self.paginate_queryset(orm_bypass.StudentPages(self.institution)))

    def _reads_bypass_orm(self) -> bool:
        return (
            self.reads_bypass_orm
            and orm_bypass.may_bypass()
            and self.get_serializer_class() is StudentSerializer
            and type(self).filter_scoped_queryset is StudentViewSet.filter_scoped_queryset
        )

    def _list_is_filtered(self, request) -> bool:
        filters = set(self.filterset_class.base_filters) if self.filterset_class else set()
        return bool(set(request.query_params) & filters) or self.paginator.wants_cursor(self.get_queryset(), request)

    def perform_destroy(self, instance):
        services.student_delete(institution=self.institution, student=instance)


class FeatureDefinitionSerializer(serializers.ModelSerializer):
    """A feature of the schema. Creating takes every field; an update takes what the schema page
    edits (label, description, unit, range, categories, protected, actionable, ``retired``) with
    the same rules, records who changed what, and answers how many stored values the new range
    or categories refuse (``stored_values_outside``: kept and flagged, refused on later imports)."""

    retired = serializers.BooleanField(required=False, help_text="Retired: no model input from the next retrain on")
    known_from = serializers.CharField(
        required=False, max_length=40,
        help_text="Key of the stage from which this value is known (GET .../stages/); default the earliest stage",
    )
    translations = serializers.JSONField(
        required=False,
        help_text='The label and description per other language of the pages, e.g. {"es": {"label": "...", '
                  '"description": "..."}, "pt": {...}}; blank shows the default label. An update changes only '
                  'the languages and parts it gives.')
    range_unconfirmed = serializers.BooleanField(read_only=True)
    stored_values_outside = serializers.SerializerMethodField()

    class Meta:
        model = FeatureDefinition
        fields = [
            "id", "key", "label", "kind", "min_value", "max_value", "categories", "unit", "description",
            "translations", "protected", "actionable", "retired", "known_from", "retired_at", "seen_min_value",
            "seen_max_value",
            "range_unconfirmed", "stored_values_outside", "position", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "retired_at", "seen_min_value", "seen_max_value", "created_at", "updated_at"]
        validators = []

    def get_stored_values_outside(self, definition) -> int | None:
        """Only in the answer to an update that changed the range or categories."""
        preview = getattr(definition, "_edit_preview", None)
        return preview.stored_values_outside if preview is not None and preview.changes_value_rules else None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["retired"] = instance.is_retired
        if "_stages" not in self.context:  # once per request, not once per feature of a list
            self.context["_stages"] = feature_stage_list(institution=self.context["institution"])
        data["known_from"] = feature_stage_of(instance, self.context["_stages"]).key
        data["translations"] = translations_object(instance.translations)
        return data

    def validate_translations(self, value):
        """As flat fields (label_es, ...), which the service checks, edits and records one by one."""
        fields, errors = translation_fields_from_object(value)
        if errors:
            raise serializers.ValidationError(errors)
        return fields

    def _flat(self, validated):
        data = dict(validated)
        data.update(data.pop("translations", None) or {})
        return data

    def validate_key(self, value):
        if self.instance is not None:
            if value != self.instance.key:
                raise serializers.ValidationError(_("cannot be changed; stored values and models refer to it"))
            return value
        institution = self.context["institution"]
        if FeatureDefinition.objects.for_institution(institution).filter(key=value).exists():
            raise serializers.ValidationError(_("a feature with this key already exists"))
        return value

    def validate_kind(self, value):
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError(_("cannot be changed; stored values were validated as this kind"))
        return value

    def validate_categories(self, value):
        if not isinstance(value, list) or not all(isinstance(item, dict) and "value" in item for item in value):
            raise serializers.ValidationError(_('must be a list of {"value": ..., "label": ...} objects'))
        return [{"value": str(item["value"]), "label": str(item.get("label") or item["value"])} for item in value]

    def validate(self, attrs):
        if self.instance is not None:
            return attrs  # an update is checked by the service, as the schema page's edits are
        kind = attrs.get("kind")
        low, high = attrs.get("min_value"), attrs.get("max_value")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_value": [_("must not be greater than max_value")]})
        if kind != FeatureKind.CATEGORICAL and attrs.get("categories"):
            raise serializers.ValidationError({"categories": [_("only categorical features have categories")]})
        return attrs

    def create(self, validated_data):
        try:
            return services.feature_definition_create(
                institution=self.context["institution"], data=self._flat(validated_data), actor=self._actor(),
                source=ChangeSource.API,
            )
        except services.FeatureDefinitionInvalid as exc:
            if "known_from" in exc.errors:
                raise serializers.ValidationError({"known_from": exc.errors["known_from"]}) from None
            raise serializers.ValidationError({"translations": [f"{name}: {' '.join(reasons)}" for name, reasons
                                                                in exc.errors.items()]}) from None

    def _actor(self):
        return self.context["request"].user  # a member, or the API key's service user

    def update(self, instance, validated_data):
        data = {name: value for name, value in self._flat(validated_data).items()
                if name in services.FEATURE_EDITABLE_FIELDS}
        try:
            preview, _change = services.feature_definition_edit(
                institution=self.context["institution"], definition=instance, data=data, actor=self._actor(),
                source=ChangeSource.API,
            )
        except services.FeatureDefinitionInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None
        instance._edit_preview = preview
        return instance


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

    def access_object(self, object_id):
        return access_feature_definition(institution=self.institution, feature_definition_id=object_id)


class FeatureStageSerializer(serializers.ModelSerializer):
    """A stage of a student's path (``known_from`` of a feature names one by its key)."""

    class Meta:
        model = FeatureStage
        fields = ["key", "label", "position"]
        read_only_fields = fields


class FeatureStageViewSet(mixins.ListModelMixin, InstitutionViewSet):
    """The institution's stages, earliest first; edited on the schema pages (docs/admin-guide.md)."""

    model = FeatureStage
    serializer_class = FeatureStageSerializer
    read_capability = "view_aggregates"
    write_capability = "manage_data"
    pagination_class = None

    def filter_scoped_queryset(self, queryset):
        feature_stages_ensure(institution=self.institution)
        return queryset.order_by("position", "id")
