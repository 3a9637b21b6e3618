"""Bulk upsert of students by external id: what a student information system sends every night."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from institutions.api.base import InstitutionScopeMixin

from . import services
from .api import StudentSerializer
from .models import ChangeSource, Student

MAX_STUDENTS_PER_REQUEST = 1000


class StudentUpsertItemSerializer(StudentSerializer):
    """One student in a bulk upsert: the external id picks the row; other fields are optional."""

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("must not be blank")
        return value


class StudentBulkUpsertSerializer(serializers.Serializer):
    students = StudentUpsertItemSerializer(many=True, help_text=f"At most {MAX_STUDENTS_PER_REQUEST} students")


class StudentBulkUpsertView(InstitutionScopeMixin, generics.GenericAPIView):
    """Create or update many students at once, keyed by ``external_id``; all or nothing.

    Every row is validated first (feature values against the schema, advisors inside the
    institution); one bad row refuses the batch with errors keyed by row index. Sending the same
    batch again changes nothing (``unchanged``).
    """

    read_capability = "edit_students"
    write_capability = "edit_students"
    api_scope = "students"
    serializer_class = StudentBulkUpsertSerializer

    @extend_schema(request=StudentBulkUpsertSerializer, responses={200: inline_serializer("StudentBulkUpsertResult", {
        "created": serializers.IntegerField(), "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
        "results": inline_serializer("StudentBulkUpsertRow", {
            "external_id": serializers.CharField(), "id": serializers.IntegerField(),
            "result": serializers.ChoiceField(choices=["created", "updated", "unchanged"])}, many=True),
    })})
    def post(self, request, *args, **kwargs):
        rows = request.data.get("students") if isinstance(request.data, dict) else None
        if not isinstance(rows, list) or not rows:
            raise serializers.ValidationError({"students": ["required: a non-empty list of students"]})
        if len(rows) > MAX_STUDENTS_PER_REQUEST:
            raise serializers.ValidationError({"students": [
                f"at most {MAX_STUDENTS_PER_REQUEST} students per request; got {len(rows)}"]})
        context = self.get_serializer_context()
        cleaned, errors, seen = [], {}, set()
        for index, row in enumerate(rows):
            item = StudentUpsertItemSerializer(data=row, context=context, partial=True)
            if not item.is_valid():
                errors[str(index)] = item.errors
                continue
            external_id = item.validated_data.get("external_id")
            if not external_id:
                errors[str(index)] = {"external_id": ["required: the key students are matched on"]}
            elif external_id in seen:
                errors[str(index)] = {"external_id": ["appears twice in this batch"]}
            else:
                seen.add(external_id)
                cleaned.append(item)
        if errors:
            raise serializers.ValidationError(errors)
        existing = {s.external_id: s for s in Student.objects.for_institution(self.institution).filter(
            external_id__in=seen)}
        results, counts = [], {"created": 0, "updated": 0, "unchanged": 0}
        with transaction.atomic():
            for item in cleaned:
                data = item._service_data(item.validated_data)
                current = existing.get(data["external_id"])
                student, changed = services.student_save(
                    institution=self.institution, student=current, data=data, source=ChangeSource.API,
                    actor=request.user,
                )
                result = "created" if current is None else ("updated" if changed else "unchanged")
                counts[result] += 1
                results.append({"external_id": student.external_id, "id": student.pk, "result": result})
        return Response({**counts, "results": results}, status=status.HTTP_200_OK)
