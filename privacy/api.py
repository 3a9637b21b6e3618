"""``POST students/<id>/erase/``: the erasure page for external systems, dry run first."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from institutions.api.base import InstitutionScopeMixin
from institutions.api.errors import error_body
from students.selectors import access_student

from .erasure import erasure_plan, student_erase
from .models import ErasureVia

COUNTS = inline_serializer("ErasureCounts", {
    "deleted": serializers.DictField(child=serializers.IntegerField()),
    "cleaned": serializers.DictField(child=serializers.IntegerField()),
})


class StudentEraseRequestSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False, help_text="Answer what would be erased; change nothing.")
    confirm_external_id = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="Required unless dry_run: the student's external id, exactly (as the page asks a person to type it).")


class StudentEraseView(InstitutionScopeMixin, generics.GenericAPIView):
    """Erase a student and everything linked to them (docs/privacy.md); ``dry_run`` lists it first."""

    serializer_class = StudentEraseRequestSerializer
    read_capability = write_capability = "manage_data"  # administrators; keys need students:write
    api_scope = "students"

    @extend_schema(request=StudentEraseRequestSerializer, responses={
        200: inline_serializer("StudentErasePreview", {"dry_run": serializers.BooleanField(), "counts": COUNTS}),
        201: inline_serializer("StudentErased", {"erasure_id": serializers.UUIDField(),
                                                 "erased_at": serializers.DateTimeField(), "counts": COUNTS}),
        400: inline_serializer("StudentEraseRefused", {"code": serializers.CharField(),
                                                       "message": serializers.CharField()}),
    })
    def post(self, request, *args, **kwargs):
        student = access_student(institution=self.institution, student_id=kwargs["student_id"])
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["dry_run"]:
            plan = erasure_plan(institution=self.institution, students=[student])
            return Response({"dry_run": True, "counts": plan.counts})
        typed = body.validated_data.get("confirm_external_id", "").strip()
        if typed != student.external_id:
            return Response(error_body(
                code="confirmation_mismatch",
                message=_("confirm_external_id must be the student's external id, exactly; nothing was erased. "
                          "Send dry_run first to see what would be erased."),
            ), status=status.HTTP_400_BAD_REQUEST)
        user = getattr(self.access.api_key, "service_user", None) or request.user
        record = student_erase(institution=self.institution, student=student, confirm_external_id=typed,
                               erased_by=user, via=ErasureVia.API)
        return Response({"erasure_id": record.erasure_id, "erased_at": record.erased_at, "counts": record.counts},
                        status=status.HTTP_201_CREATED)
