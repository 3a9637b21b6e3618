import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, permissions
from rest_framework.response import Response

from ..models import Job, JobKind, JobStatus, Membership
from ..selectors import access_job, membership_list_for_user
from .base import InstitutionScopeMixin, InstitutionViewSet
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
        return {**super().get_serializer_context(), "cut_result_lists": self.action == "list"}

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("created_by")

    def access_object(self, object_id):
        return access_job(institution=self.institution, job_id=object_id)

