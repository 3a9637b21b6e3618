import django_filters
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from ..api_keys import CAPABILITY_FAMILY
from ..jobs import JobNotCancellable, job_cancel
from ..models import Job, JobKind, JobStatus, Membership
from ..selectors import access_job, job_cancel_capability, membership_list_for_user
from ..signals import job_results_read
from .base import InstitutionScopeMixin, InstitutionViewSet
from .errors import error_body
from .serializers import InstitutionSerializer, JobSerializer, MembershipInstitutionSerializer


class MyInstitutionListView(generics.ListAPIView):
    """The institutions the caller belongs to, with the caller's role in each."""

    serializer_class = MembershipInstitutionSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.all_institutions.none()
        return membership_list_for_user(user=self.request.user)


class InstitutionDetailView(InstitutionScopeMixin, generics.GenericAPIView):
    read_capability = "view_aggregates"
    serializer_class = InstitutionSerializer

    @extend_schema(responses=InstitutionSerializer)
    def get(self, request, *args, **kwargs):
        return Response(InstitutionSerializer(self.institution).data)


class JobFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=JobKind.choices)
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """Long-running work (imports, retrains, rescores): poll a job until it is finished."""

    model = Job
    serializer_class = JobSerializer
    read_capability = "view_aggregates"
    filterset_class = JobFilter

    def get_serializer_context(self):
        # An import's rejected cells and changes are students' values: only for those who manage
        # the institution's data (administrators; keys with imports:read). Others get its figures.
        values_visible = hasattr(self, "access") and self.access.can(
            "manage_data", write=False, family=CAPABILITY_FAMILY["manage_data"])
        return {**super().get_serializer_context(), "cut_result_lists": self.action == "list",
                "import_values_visible": values_visible}

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("created_by")

    def access_object(self, object_id):
        return access_job(institution=self.institution, job_id=object_id)

    def finalize_response(self, request, response, *args, **kwargs):
        if request.method in ("GET", "HEAD") and response.status_code == 200 and self.action in ("list", "retrieve"):
            data = response.data
            jobs = data.get("results", []) if self.action == "list" and isinstance(data, dict) else [data]
            job_results_read.send(sender=type(self), request=request, institution=self.institution, jobs=jobs,
                                  detail=self.action == "retrieve")
        return super().finalize_response(request, response, *args, **kwargs)

    # Cancelling an import needs imports:write (a key) or manage_data; a retrain or rescore also
    # predictions:write or manage_models (checked on the job, once found in this institution).
    capability_map = {"cancel": "manage_data"}

    @extend_schema(request=None, responses={
        200: JobSerializer, 409: OpenApiResponse(description="The job has already finished (code job_finished)."),
    })
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        """Cancel a queued job (at once) or a running one (it stops at its next step; work already
        stored is kept, an import being committed writes nothing). The answer is the job; poll it
        until ``status`` is ``cancelled``. Another institution's job is a 404."""
        job = self.get_object()
        capability = job_cancel_capability(job)
        if not self.access.can(capability, write=True, family=CAPABILITY_FAMILY[capability]):
            raise PermissionDenied(_("Your role or key does not allow cancelling this job."))
        try:
            job = job_cancel(job=job, user=request.user)
        except JobNotCancellable as exc:
            return Response(error_body(code="job_finished", message=str(exc)), status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(job).data)

