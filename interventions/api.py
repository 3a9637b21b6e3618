"""REST API for intervention types, interventions, flags and caseload assignment.

``/api/v1/institutions/<slug>/intervention-types/``, ``.../interventions/`` (``POST .../<id>/close/``),
``.../flags/`` (``POST .../<id>/resolve/``) and ``POST .../caseload-assignments/``.
"""

from __future__ import annotations

import django_filters
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from audit.models import AccessAction
from audit.recording import AccessRecordedAPIMixin
from institutions.access import access_member_user
from institutions.api.base import InstitutionScopeMixin, InstitutionViewSet
from institutions.api.filters import IdFilter, StrictBooleanFilter, UtcIsoDateTimeFilter
from students.models import ChangeSource, Student
from students.selectors import access_student

from . import services
from .models import Flag, FlagSource, Intervention, InterventionOutcome, InterventionStatus, InterventionType
from .selectors import access_flag, access_intervention, access_intervention_type, caseload_summary, intervention_list


def _rule_error(exc: services.InterventionRuleError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.errors)


NO_SUCH_STUDENT = gettext_lazy("no such student in this institution")


def _body_student(serializer, student_id):
    """A student id from a request body, resolved inside the institution: another institution's
    student is rejected with the same 400 message as a missing one."""
    try:
        return access_student(institution=serializer.context["institution"], student_id=student_id)
    except Http404:
        raise serializers.ValidationError(NO_SUCH_STUDENT) from None


class InterventionTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = InterventionType
        fields = ["id", "key", "label", "description", "is_active", "position", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []

    def create(self, validated_data):
        try:
            return services.intervention_type_save(
                institution=self.context["institution"], intervention_type=None, data=validated_data
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None

    def update(self, instance, validated_data):
        try:
            return services.intervention_type_save(
                institution=self.context["institution"], intervention_type=instance, data=validated_data
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None


class InterventionTypeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    InstitutionViewSet,
):
    """The kinds of intervention the institution offers (the defaults come with the institution)."""

    model = InterventionType
    serializer_class = InterventionTypeSerializer
    read_capability = "view_students"
    write_capability = "configure_interventions"
    pagination_class = None

    def filter_scoped_queryset(self, queryset):
        return queryset.order_by("position", "label", "id")

    def access_object(self, object_id):
        return access_intervention_type(institution=self.institution, intervention_type_id=object_id)


class InterventionSerializer(serializers.ModelSerializer):
    # FKs are plain integers in the body, resolved inside the institution by the access_* selectors.
    student = serializers.IntegerField(source="student_id")
    intervention_type = serializers.IntegerField(source="intervention_type_id")
    notes = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    outcome_notes = serializers.CharField(read_only=True)
    author = serializers.IntegerField(source="author_id", read_only=True, allow_null=True)  # null: author deleted
    # Read-only model fields lose allow_blank in DRF; an open intervention's outcome is "".
    outcome = serializers.ChoiceField(choices=InterventionOutcome.choices, allow_blank=True, read_only=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Intervention
        fields = [
            "id", "student", "intervention_type", "date", "notes", "confidential", "follow_up_date", "status",
            "outcome", "outcome_notes", "closed_at", "author", "overdue", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "status", "outcome", "closed_at", "created_at", "updated_at"]

    def validate_student(self, value) -> Student:
        return _body_student(self, value)

    def validate_intervention_type(self, value) -> InterventionType:
        try:
            return access_intervention_type(institution=self.context["institution"], intervention_type_id=value)
        except Http404:
            raise serializers.ValidationError(_("no such intervention type in this institution")) from None

    def get_overdue(self, obj) -> bool:
        return bool(obj.status == InterventionStatus.OPEN and obj.follow_up_date
                    and obj.follow_up_date < timezone.localdate())

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # The list/detail querysets blank confidential notes in SQL for readers who may not see them.
        if hasattr(instance, "visible_notes"):
            data["notes"] = instance.visible_notes
            data["outcome_notes"] = instance.visible_outcome_notes
            data["notes_visible"] = instance.notes_visible
        return data

    def create(self, validated_data):
        request = self.context["request"]
        try:
            return services.intervention_create(
                institution=self.context["institution"], student=validated_data["student_id"],
                intervention_type=validated_data["intervention_type_id"], date=validated_data["date"],
                author=request.user, notes=validated_data.get("notes", ""),
                confidential=validated_data.get("confidential", False),
                follow_up_date=validated_data.get("follow_up_date"),
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None

    def update(self, instance, validated_data):
        data = dict(validated_data)
        if "student_id" in data and data.pop("student_id").pk != instance.student_id:
            raise serializers.ValidationError({"student": [_("an intervention cannot move to another student")]})
        if "intervention_type_id" in data:
            data["intervention_type"] = data.pop("intervention_type_id")
        try:
            return services.intervention_update(
                institution=self.context["institution"], intervention=instance, data=data,
                user=self.context["request"].user, membership=self.context["membership"],
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None


class InterventionCloseSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=InterventionOutcome.choices)
    outcome_notes = serializers.CharField(required=False, allow_blank=True, max_length=20000)


class InterventionFilter(django_filters.FilterSet):
    # Declared explicitly: auto-generated filters introspect the fail-closed default manager.
    student = IdFilter(field_name="student_id")
    intervention_type = IdFilter(field_name="intervention_type_id")
    author = IdFilter(field_name="author_id")
    status = django_filters.ChoiceFilter(choices=InterventionStatus.choices)
    outcome = django_filters.ChoiceFilter(choices=InterventionOutcome.choices)
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    overdue = StrictBooleanFilter(method="filter_overdue")
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status=InterventionStatus.OPEN, follow_up_date__lt=timezone.localdate())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class MembershipContextMixin:
    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["membership"] = getattr(getattr(self, "access", None), "membership", None)
        return context


class InterventionViewSet(
    AccessRecordedAPIMixin, MembershipContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
    mixins.CreateModelMixin, mixins.UpdateModelMixin, InstitutionViewSet,
):
    """Interventions: log, edit, close with an outcome. Confidential notes read as a placeholder for
    anyone but their author and administrators."""

    model = Intervention
    serializer_class = InterventionSerializer
    filterset_class = InterventionFilter
    read_capability = "view_students"
    write_capability = "edit_interventions"
    access_reads = {"list": AccessAction.API_INTERVENTION_LIST, "retrieve": AccessAction.API_INTERVENTION_READ}

    def filter_scoped_queryset(self, queryset):
        # The selector builds its own institution-bound queryset with confidential notes blanked.
        return intervention_list(
            institution=self.institution, user=self.request.user, membership=self.access.membership
        )

    def access_object(self, object_id):
        return access_intervention(
            institution=self.institution, intervention_id=object_id, user=self.request.user,
            membership=self.access.membership,
        )

    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        return self._fresh(response.data["id"])

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = serializer.save()
        return self._fresh(instance.pk, status_code=status.HTTP_201_CREATED)

    def _fresh(self, pk, status_code=status.HTTP_200_OK):
        instance = self.get_queryset().get(pk=pk)
        return Response(self.get_serializer(instance).data, status=status_code)

    @extend_schema(request=InterventionCloseSerializer, responses=InterventionSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, *args, **kwargs):
        """Close an open intervention with its outcome."""
        intervention = self.get_object()
        serializer = InterventionCloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.intervention_close(
                institution=self.institution, intervention=intervention, user=request.user,
                membership=self.access.membership, **serializer.validated_data,
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None
        return self._fresh(intervention.pk)


class FlagSerializer(serializers.ModelSerializer):
    student = serializers.IntegerField(source="student_id")
    # null: raised by the system, not resolved yet, or the user was deleted since.
    raised_by = serializers.IntegerField(source="raised_by_id", read_only=True, allow_null=True)
    resolved_by = serializers.IntegerField(source="resolved_by_id", read_only=True, allow_null=True)
    assigned_to = serializers.IntegerField(
        source="assigned_to_id", required=False, allow_null=True,
        help_text="User id of the advisor or administrator the flag is routed to (under need-to-know access "
                  "they see the student while the flag is open); null: nobody in particular",
    )
    is_open = serializers.BooleanField(read_only=True)

    class Meta:
        model = Flag
        fields = [
            "id", "student", "source", "reason", "raised_by", "assigned_to", "raised_at", "is_open", "resolved_at",
            "resolved_by", "resolution", "updated_at",
        ]
        read_only_fields = ["id", "source", "raised_at", "resolved_at", "resolution", "updated_at"]

    def validate_student(self, value) -> Student:
        return _body_student(self, value)

    def create(self, validated_data):
        try:
            return services.flag_raise(
                institution=self.context["institution"], student=validated_data["student_id"],
                reason=validated_data.get("reason", ""), raised_by=self.context["request"].user,
                assigned_to=validated_data.get("assigned_to_id"),
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None


class FlagResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(max_length=5000)


class FlagFilter(django_filters.FilterSet):
    student = IdFilter(field_name="student_id")
    source = django_filters.ChoiceFilter(choices=FlagSource.choices)
    raised_by = IdFilter(field_name="raised_by_id")
    is_open = StrictBooleanFilter(field_name="resolved_at", lookup_expr="isnull")
    resolved_since = UtcIsoDateTimeFilter(field_name="resolved_at", lookup_expr="gte")


class FlagViewSet(
    AccessRecordedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    InstitutionViewSet,
):
    """Students marked for attention by the model or by staff (with a reason); resolve with a reason."""

    model = Flag
    serializer_class = FlagSerializer
    filterset_class = FlagFilter
    read_capability = "view_students"
    write_capability = "edit_interventions"
    access_reads = {"list": AccessAction.API_FLAG_LIST, "retrieve": AccessAction.API_FLAG_READ}

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("raised_by", "resolved_by").order_by("-raised_at", "-id")

    def access_object(self, object_id):
        return access_flag(institution=self.institution, flag_id=object_id)

    @extend_schema(request=FlagResolveSerializer, responses=FlagSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        """Resolve an open flag; its raiser sees the resolution and the reason."""
        flag = self.get_object()
        serializer = FlagResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            flag = services.flag_resolve(
                institution=self.institution, flag=flag, resolved_by=request.user,
                resolution=serializer.validated_data["resolution"],
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None
        return Response(FlagSerializer(flag).data)


class CaseloadAssignmentSerializer(serializers.Serializer):
    advisor = serializers.IntegerField(
        allow_null=True, help_text="User id of an advisor or administrator; null unassigns"
    )
    students = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=50000)

    def validate_advisor(self, value):
        if value is None:
            return None
        try:
            return access_member_user(institution=self.context["institution"], user_id=value)
        except Http404:
            raise serializers.ValidationError(_("no such advisor in this institution")) from None


class CaseloadAssignmentResultSerializer(serializers.Serializer):
    advisor = serializers.IntegerField(allow_null=True)
    assigned = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class CaseloadSummarySerializer(serializers.Serializer):
    advisor = serializers.IntegerField(allow_null=True, help_text="null: students nobody is assigned to")
    students = serializers.IntegerField()
    flagged = serializers.IntegerField()
    overdue_follow_ups = serializers.IntegerField()


class CaseloadAssignmentView(InstitutionScopeMixin, GenericAPIView):
    """``GET``: each advisor's caseload size (current students, flagged, overdue follow-ups).
    ``POST``: assign students to an advisor in bulk (administrators); any id from elsewhere is a 400
    and nothing is written."""

    read_capability = "view_students"
    write_capability = "assign_caseloads"
    serializer_class = CaseloadAssignmentSerializer
    # A summary, not a model list: no filters or pagination (and none for the schema to introspect).
    filter_backends: list = []
    pagination_class = None

    @extend_schema(responses=CaseloadSummarySerializer(many=True))
    def get(self, request, *args, **kwargs):
        rows = caseload_summary(institution=self.institution)
        return Response(CaseloadSummarySerializer(rows, many=True).data)

    @extend_schema(request=CaseloadAssignmentSerializer, responses=CaseloadAssignmentResultSerializer)
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = services.caseload_assign(
                institution=self.institution, student_ids=serializer.validated_data["students"],
                advisor=serializer.validated_data["advisor"], actor=request.user, source=ChangeSource.API,
            )
        except services.InterventionRuleError as exc:
            raise _rule_error(exc) from None
        return Response({"advisor": result.advisor_id, "assigned": result.assigned, "unchanged": result.unchanged})
