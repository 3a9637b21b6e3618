"""REST API of the model registry and stored predictions (``/api/v1/institutions/<slug>/...``)."""

from __future__ import annotations

import django_filters
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from audit.models import AccessAction
from audit.recording import AccessRecordedAPIMixin
from institutions.api.base import InstitutionScopeMixin, InstitutionViewSet
from institutions.api.errors import error_body
from institutions.api.filters import StrictBooleanFilter, UtcIsoDateTimeFilter
from institutions.api.serializers import JobSerializer
from students.models import Student
from students.selectors import access_student, feature_labels_shown
from students.stages import feature_stage_for_input, feature_stage_list

from .factor_sentences import present_factors
from .models import LatestPrediction, ModelVersion, Prediction, RiskBand
from .selectors import (
    access_model_version,
    latest_prediction_for_student,
    latest_predictions_explained,
    model_realised,
    model_version_stage_q,
    prediction_history,
)
from .services.promotion import (
    GateOverrideRequired,
    ModelDecisionError,
    model_version_promote,
    model_version_reject,
    model_version_rollback,
)
from .services.requests import rescore_request, retrain_request


class ModelVersionSerializer(serializers.ModelSerializer):
    # null: made by a schedule or the system, not decided yet, or the user was deleted since.
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True, allow_null=True)
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True, allow_null=True)
    gate_overridden_by = serializers.CharField(source="gate_overridden_by.username", default=None, read_only=True,
                                               allow_null=True)
    stage = serializers.SerializerMethodField(
        help_text="Key of the stage the model was trained for (stages/): it read only the features known then")

    class Meta:
        model = ModelVersion
        fields = [
            "id", "number", "stage", "status", "artifact_sha256", "artifact_bytes", "training_size", "training_counts",
            "feature_keys", "metrics", "holdout_metrics", "baselines", "fairness", "gate", "threshold", "trigger",
            "created_by", "decided_by", "decided_at", "decision_note", "gate_override_reason", "gate_overridden_by",
            "gate_overridden_at", "promoted_at", "created_at",
        ]
        read_only_fields = fields


    def get_stage(self, version) -> str:
        if "_earliest_stage" not in self.context:  # once per request, not once per version of a page
            institution = self.context.get("institution") or version.institution
            self.context["_earliest_stage"] = feature_stage_list(institution=institution)[0]
        return version.stage.key if version.stage_id else self.context["_earliest_stage"].key


class ModelVersionDetailSerializer(ModelVersionSerializer):
    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "model_card"]
        read_only_fields = fields


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class PromoteSerializer(DecisionSerializer):
    reason = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="",
        help_text="Required when the version did not pass the promotion gate (at least 10 characters): why it "
                  "should go live anyway. Stored with the version, the caller and the time. Without it such a "
                  "promotion is refused with 400 and code gate_override_reason_required.")


class RescoreRequestSerializer(serializers.Serializer):
    full = serializers.BooleanField(required=False, default=False,
                                    help_text="Rescore every current student, not only those whose data changed.")


def _accepted(view, job, created: bool) -> Response:
    data = JobSerializer(job, context={"institution": view.institution}).data
    data["joined_active_job"] = not created
    url = reverse("api-job-detail", kwargs={"institution_slug": view.institution.slug, "pk": job.pk})
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class RealisedReportSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    flag_share = serializers.FloatField(allow_null=True, help_text="share of current students the institution flags")
    floor = serializers.FloatField(help_text="the institution's realised ROC-AUC floor")
    overall = serializers.DictField(help_text="students, leavers, observed_rate, mean_risk, roc_auc {value, low, "
                                              "high} or null, brier, ece, calibration [...], at_capacity, enough")
    periods = serializers.ListField(child=serializers.DictField(), help_text="the same per half-year of outcomes, "
                                                                             "with period ('2026 H1')")


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """The institution's model versions with metrics, baselines, fairness and the gate's verdict."""

    model = ModelVersion
    read_capability = "view_aggregates"
    write_capability = "manage_models"
    lookup_field = "number"
    lookup_value_regex = r"\d+"

    def filter_scoped_queryset(self, queryset):
        queryset = queryset.defer("artifact").select_related(
            "created_by", "decided_by", "gate_overridden_by", "stage"
        ).order_by("-number")
        key = self.request.query_params.get("stage") if self.action == "list" else None
        if key:  # ?stage=<key>: the versions of one stage of this institution
            stage = feature_stage_for_input(institution=self.institution, key=key[:40])
            if stage is None:
                raise serializers.ValidationError({"stage": ["this institution has no stage with this key"]})
            queryset = queryset.filter(model_version_stage_q(institution=self.institution, stage=stage))
        return queryset

    def access_object(self, object_id):
        return access_model_version(institution=self.institution, number=object_id)

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ModelVersionDetailSerializer
        if self.action == "promote":
            return PromoteSerializer
        if self.action == "reject":
            return DecisionSerializer
        if self.action == "rescore":
            return RescoreRequestSerializer
        return ModelVersionSerializer

    def _decide(self, request, decide, serializer_class=DecisionSerializer):
        version = self.get_object()
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        extra = {"gate_override_reason": serializer.validated_data["reason"]} if "reason" in serializer.fields else {}
        try:
            version = decide(institution=self.institution, version=version, user=request.user,
                             note=serializer.validated_data["note"], **extra)
        except GateOverrideRequired as exc:
            return Response(error_body(code=GateOverrideRequired.code, message=str(exc), errors={"reason": [str(exc)]}),
                            status=status.HTTP_400_BAD_REQUEST)
        except ModelDecisionError as exc:
            raise ValidationError({"status": [str(exc)]}) from None
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(request=None, responses=RealisedReportSerializer)
    @action(detail=True, methods=["get"])
    def realised(self, request, *args, **kwargs):
        """Did this version's predictions come true? For the students it scored whose outcome was
        recorded later: ROC-AUC with its 95% interval, Brier, ECE, the calibration table and
        precision/recall at the flagged share, overall and per half-year (docs/model_card.md)."""
        version = self.get_object()
        return Response(RealisedReportSerializer(model_realised(institution=self.institution, version=version)).data)

    @extend_schema(request=PromoteSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, *args, **kwargs):
        """Make this version live (the current live one is retired) and queue a rescore.

        A version that did not pass the promotion gate needs ``reason``; without one the answer is
        400 with code ``gate_override_reason_required`` and nothing changes.
        """
        return self._decide(request, model_version_promote, PromoteSerializer)

    @extend_schema(request=DecisionSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, *args, **kwargs):
        return self._decide(request, model_version_reject)

    @extend_schema(request=None, responses=ModelVersionSerializer)
    @action(detail=False, methods=["post"])
    def rollback(self, request, *args, **kwargs):
        """Put the previously live version back in production."""
        try:
            version = model_version_rollback(institution=self.institution, user=request.user)
        except ModelDecisionError as exc:
            raise ValidationError({"status": [str(exc)]}) from None
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=False, methods=["post"])
    def retrain(self, request, *args, **kwargs):
        """Queue a retrain (or join the one running); poll the returned job."""
        job, created = retrain_request(institution=self.institution, created_by=request.user,
                                       triggered_by="api")
        return _accepted(self, job, created)

    @extend_schema(request=RescoreRequestSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"])
    def rescore(self, request, *args, **kwargs):
        """Queue a rescore of current students with the live model (or join the one running)."""
        serializer = RescoreRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job, created = rescore_request(
            institution=self.institution, full=serializer.validated_data["full"], created_by=request.user,
            triggered_by="api",
        )
        return _accepted(self, job, created)


class FactorsField(serializers.JSONField):
    """The stored factors with ``label``, ``display_value`` and ``text`` in the request's language
    (Accept-Language; a signed-in person's own choice first); the figures as stored."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        context = self.context
        if "feature_labels" not in context:  # once per response, not per row
            institution = context.get("institution")
            context["feature_labels"] = feature_labels_shown(institution=institution) if institution else {}
        return present_factors(value or [], context["feature_labels"])


class PredictionSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version.number", read_only=True)
    factors = FactorsField()

    class Meta:
        model = Prediction
        fields = ["id", "risk", "band", "model_version", "job", "input_fingerprint", "base_value", "factors",
                  "created_at"]
        read_only_fields = fields


class PredictionHistoryItemSerializer(PredictionSerializer):
    class Meta(PredictionSerializer.Meta):
        fields = ["id", "risk", "band", "model_version", "job", "input_fingerprint", "created_at"]
        read_only_fields = fields


class LatestPredictionSerializer(serializers.ModelSerializer):
    student = serializers.IntegerField(source="student_id", read_only=True)
    student_external_id = serializers.CharField(source="student.external_id", read_only=True)
    model_version = serializers.IntegerField(source="model_version.number", read_only=True)
    base_value = serializers.FloatField(source="prediction.base_value", read_only=True)
    factors = FactorsField(source="prediction.factors")
    job = serializers.IntegerField(source="prediction.job_id", read_only=True)

    class Meta:
        model = LatestPrediction
        fields = ["student", "student_external_id", "risk", "band", "rank", "percentile", "flagged",
                  "model_version", "job", "input_fingerprint", "scored_at", "updated_at", "base_value", "factors"]
        read_only_fields = fields


class LatestPredictionFilter(django_filters.FilterSet):
    band = django_filters.ChoiceFilter(choices=RiskBand.choices)
    flagged = StrictBooleanFilter()
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class LatestPredictionViewSet(AccessRecordedAPIMixin, mixins.ListModelMixin, InstitutionViewSet):
    """Every current student's latest prediction with its explanation, in rank order (highest risk
    first). ``updated_since`` returns the rows whose risk, band, flag or rank changed since then,
    by cursor, for a nightly pull of the risks."""

    model = LatestPrediction
    serializer_class = LatestPredictionSerializer
    filterset_class = LatestPredictionFilter
    read_capability = "view_students"
    access_reads = {"list": AccessAction.API_PREDICTION_LIST}

    def filter_scoped_queryset(self, queryset):
        # The selector builds the same institution-bound queryset, joined and in rank order.
        return latest_predictions_explained(institution=self.institution)


class _StudentPredictionMixin(AccessRecordedAPIMixin, InstitutionScopeMixin):
    read_capability = "view_students"

    def student(self) -> Student:
        return access_student(institution=self.institution, student_id=self.kwargs["student_id"])


class StudentLatestPredictionView(_StudentPredictionMixin, generics.GenericAPIView):
    """The student's current risk, band, rank and flag with the explanation (top factors)."""

    serializer_class = LatestPredictionSerializer
    access_reads = {"get": AccessAction.API_PREDICTION_READ}

    @extend_schema(responses={200: LatestPredictionSerializer, 404: inline_serializer(
        "PredictionNotFound", {"code": serializers.CharField(), "message": serializers.CharField()})})
    def get(self, request, *args, **kwargs):
        latest = latest_prediction_for_student(institution=self.institution, student=self.student())
        if latest is None:
            return Response({"code": "not_scored", "message": "This student has no prediction yet.", "errors": {}},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(LatestPredictionSerializer(latest, context=self.get_serializer_context()).data)


class StudentPredictionHistoryView(_StudentPredictionMixin, generics.ListAPIView):
    """Every stored prediction of the student, newest first: the risk over time."""

    serializer_class = PredictionHistoryItemSerializer
    access_reads = {"get": AccessAction.API_PREDICTION_HISTORY}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no student, no rows
            return Prediction.all_institutions.none()
        return prediction_history(institution=self.institution, student=self.student())


