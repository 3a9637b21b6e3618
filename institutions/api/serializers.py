from rest_framework import serializers

from ..models import Institution, Job, JobKind, Membership


class InstitutionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Institution
        fields = ["slug", "name", "timezone", "created_at"]
        read_only_fields = fields


class MembershipInstitutionSerializer(serializers.ModelSerializer):
    institution = InstitutionSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["institution", "role"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    """A job. With ``cut_result_lists`` in the context (``GET /jobs/``), each list in its result
    (an import's problems, say) is cut to its first :data:`LIST_RESULT_ITEMS` entries, so a page
    of jobs stays small; ``result.truncated_lists`` names what was cut, and ``GET /jobs/<id>/``
    has the job's whole (itself bounded) result."""

    percent = serializers.IntegerField(read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "url", "kind", "status", "stage", "percent", "progress_done", "progress_total", "counts",
            "result", "error", "triggered_by", "params", "created_at", "started_at", "finished_at",
            "duration_seconds", "dispatch_error", "attempts", "lease_expires_at", "cancel_requested_at",
            "waits_for",
        ]
        read_only_fields = fields

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        if job.kind == JobKind.IMPORT and not self.context.get("import_values_visible", False):
            data["result"] = import_result_without_values(data.get("result"))
        if self.context.get("cut_result_lists") and isinstance(data.get("result"), dict):
            data["result"] = _cut_lists(data["result"])
        return data

    def get_url(self, job: Job) -> str:
        from django.urls import reverse

        return reverse("api-job-detail", kwargs={"institution_slug": self.context["institution"].slug, "pk": job.pk})


LIST_RESULT_ITEMS = 10


def import_result_without_values(result) -> dict:
    """An import's result for a caller who may not manage data (viewers, advisors, keys without
    imports:read): its figures only. The rejected cells (with their values and reasons), the list
    of changes (old and new values) and anything else that could carry a student's data are left
    out; ``values_hidden`` says so."""
    if not isinstance(result, dict):
        return {"values_hidden": True}
    kept = {key: value for key, value in result.items()
            if isinstance(value, bool | int | float) or value is None}
    return {**kept, "values_hidden": True}


def _cut_lists(value: dict) -> dict:
    cut, truncated = {}, []
    for key, item in value.items():
        if isinstance(item, list) and len(item) > LIST_RESULT_ITEMS:
            truncated.append(key)
            item = item[:LIST_RESULT_ITEMS]
        elif isinstance(item, dict):
            item = _cut_lists(item)
        cut[key] = item
    if truncated:
        cut["truncated_lists"] = truncated
    return cut
