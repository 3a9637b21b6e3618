"""``POST /api/v1/institutions/<slug>/score/``: score up to 1,000 applicants' records, keep nothing."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from audit.models import AccessAction
from audit.services import access_record_for_request
from institutions.api.base import InstitutionScopeMixin
from institutions.api.errors import error_body
from students.selectors import feature_labels_shown

from .factor_sentences import present_factors
from .models import RiskBand
from .services.applicant_scoring import (
    MAX_RECORDS_PER_REQUEST,
    REF_MAX_LENGTH,
    ApplicantRecordsInvalid,
    NoLiveModel,
    applicant_records_clean,
    applicant_scorer,
)


class ApplicantRecordSerializer(serializers.Serializer):
    ref = serializers.CharField(max_length=REF_MAX_LENGTH, help_text="Your own reference for the applicant; "
                                "answered back, never stored.")
    features = serializers.DictField(
        child=serializers.JSONField(allow_null=True), required=False, default=dict,
        help_text="Feature key -> value, validated against the institution's feature schema like an import "
                  "(numbers, category values, true/false; null or absent: not recorded). A protected attribute, "
                  "a retired feature or a key the schema does not know is refused.")


class ApplicantScoreRequestSerializer(serializers.Serializer):
    records = ApplicantRecordSerializer(many=True, min_length=1, max_length=MAX_RECORDS_PER_REQUEST,
                                        help_text=f"1 to {MAX_RECORDS_PER_REQUEST} records")


_FACTOR_FIELDS = {
    "feature": serializers.CharField(), "label": serializers.CharField(), "value": serializers.JSONField(),
    "display_value": serializers.CharField(), "contribution": serializers.FloatField(help_text="log-odds"),
    "points": serializers.FloatField(help_text="percentage points of the shown risk"),
    "direction": serializers.ChoiceField(choices=["raises", "lowers"]), "actionable": serializers.BooleanField(),
    "text": serializers.CharField(), "shown": serializers.DictField(required=False),
    "observed": serializers.DictField(required=False),
}
_RESULT_FIELDS = {
    "ref": serializers.CharField(), "risk": serializers.FloatField(),
    "band": serializers.ChoiceField(choices=RiskBand.choices), "model_version": serializers.IntegerField(),
    "base_value": serializers.FloatField(), "base_risk": serializers.FloatField(allow_null=True),
    "factors": inline_serializer("ApplicantFactor", _FACTOR_FIELDS, many=True),
}
_NO_LIVE_MODEL = inline_serializer("NoLiveModel", {"code": serializers.CharField(), "message": serializers.CharField(),
                                                   "errors": serializers.DictField()})


class ApplicantScoreView(InstitutionScopeMixin, generics.GenericAPIView):
    """Score applicants (or any records that are no students here) with the live model.

    Every record is validated first, like an import; one bad value refuses the request with
    errors keyed by the record's index and nothing is scored. The answer gives each record's
    risk, band, model version and top factors (log-odds and points, as a student's prediction).
    Nothing about the records is stored; one access-log entry records the call (who, when, the
    model version, how many records). A key needs ``predictions:read``: nothing changes.
    """

    read_capability = "score_applicants"
    write_capability = "score_applicants"
    post_changes_nothing = True
    serializer_class = ApplicantScoreRequestSerializer

    @extend_schema(
        request=ApplicantScoreRequestSerializer,
        responses={200: inline_serializer("ApplicantScoreResult", {
            "model_version": serializers.IntegerField(),
            "results": inline_serializer("ApplicantScore", _RESULT_FIELDS, many=True)}), 409: _NO_LIVE_MODEL},
        examples=[OpenApiExample("Two applicants", request_only=True, value={"records": [
            {"ref": "A-2027-0001", "features": {"admission_grade": 142.5, "scholarship_holder": True}},
            {"ref": "A-2027-0002", "features": {"admission_grade": 118}}]})],
    )
    def post(self, request, *args, **kwargs):
        records = request.data.get("records") if isinstance(request.data, dict) else None
        if not isinstance(records, list) or not records:
            raise serializers.ValidationError({"records": ["required: a non-empty list of records"]})
        if len(records) > MAX_RECORDS_PER_REQUEST:
            raise serializers.ValidationError({"records": [
                f"at most {MAX_RECORDS_PER_REQUEST} records per request; got {len(records)}"]})
        try:
            cleaned = applicant_records_clean(institution=self.institution, records=records)
        except ApplicantRecordsInvalid as exc:
            raise serializers.ValidationError({
                str(index): {field: reason if isinstance(reason, dict) else [reason]
                             for field, reason in problems.items()}
                for index, problems in exc.errors.items()}) from None
        try:
            scorer = applicant_scorer(institution=self.institution)
        except NoLiveModel as exc:
            return Response(error_body(code="no_live_model", message=str(exc)), status=status.HTTP_409_CONFLICT)
        scores = scorer.score(cleaned)
        access_record_for_request(request, institution=self.institution, action=AccessAction.API_APPLICANT_SCORE,
                                  filters={"model_version": scorer.version.number}, result_count=len(scores))
        number = scorer.version.number
        labels = feature_labels_shown(institution=self.institution)  # factor sentences as in a prediction's
        return Response({"model_version": number, "results": [
            {"ref": score.ref, "risk": score.risk, "band": score.band, "model_version": number,
             "base_value": score.base_value, "base_risk": score.base_risk,
             "factors": present_factors(score.factors, labels)}
            for score in scores]})
