from rest_framework import serializers

from ..models import Institution, Job, Membership


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
    percent = serializers.IntegerField(read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "url", "kind", "status", "stage", "percent", "progress_done", "progress_total", "counts",
            "result", "error", "triggered_by", "params", "created_at", "started_at", "finished_at",
            "duration_seconds", "dispatch_error",
        ]
        read_only_fields = fields

    def get_url(self, job: Job) -> str:
        from django.urls import reverse

        return reverse("api-job-detail", kwargs={"institution_slug": self.context["institution"].slug, "pk": job.pk})
