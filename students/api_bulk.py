"""Bulk upsert of students by external id: what a student information system sends every night."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from institutions.api.base import InstitutionScopeMixin

from .api import StudentSerializer
from .feature_values import FeatureValuesInvalid, clean_feature_values
from .importing.service import CHUNK_ROWS
from .importing.upsert import ChunkWriter
from .importing.validation import CleanRecord
from .models import ChangeSource, Student
from .selectors import feature_definition_list
from .services import STUDENT_FIELDS
from .signals import import_committed

MAX_STUDENTS_PER_REQUEST = 10_000


class StudentUpsertItemSerializer(StudentSerializer):
    """One student in a bulk upsert: the external id picks the row; other fields are optional."""

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError(_("must not be blank"))
        return value

    def validate_features(self, value):
        # The schema is read once per request (context), not once per student.
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("must be an object mapping feature keys to values"))
        try:
            return clean_feature_values(self.context["definitions"], value)
        except FeatureValuesInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None

    def validate_advisor(self, value):
        advisors = self.context["advisors"]
        if value not in advisors:
            advisors[value] = super().validate_advisor(value)  # raises for anyone outside the institution
        return advisors[value]


class StudentBulkUpsertSerializer(serializers.Serializer):
    students = StudentUpsertItemSerializer(many=True, min_length=1, max_length=MAX_STUDENTS_PER_REQUEST,
                                           help_text=f"1 to {MAX_STUDENTS_PER_REQUEST} students")


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
            raise serializers.ValidationError({"students": [_("required: a non-empty list of students")]})
        if len(rows) > MAX_STUDENTS_PER_REQUEST:
            raise serializers.ValidationError({"students": [
                _("at most %(limit)s students per request; got %(count)s")
                % {"limit": MAX_STUDENTS_PER_REQUEST, "count": len(rows)}]})
        context = {**self.get_serializer_context(), "advisors": {},
                   "definitions": list(feature_definition_list(institution=self.institution))}
        # One child serializer validates every row (many=True): per-row field set-up would dominate 10,000 rows.
        batch = StudentUpsertItemSerializer(data=rows, many=True, partial=True, context=context)
        errors: dict[str, object] = {}
        if not batch.is_valid():
            # Partial list validation reports {index: errors}; full validation a list aligned with the rows.
            found = batch.errors.items() if isinstance(batch.errors, dict) else enumerate(batch.errors)
            errors = {str(index): row_errors for index, row_errors in found if row_errors}
        seen: set[str] = set()
        for index, row in enumerate(rows):  # the key checks, reported beside any field errors
            raw = row.get("external_id") if isinstance(row, dict) else None
            external_id = "" if raw is None else str(raw).strip()
            if not external_id:
                errors.setdefault(str(index), {"external_id": ["required: the key students are matched on"]})
            elif external_id in seen:
                errors.setdefault(str(index), {"external_id": ["appears twice in this batch"]})
            seen.add(external_id)
        if errors:
            raise serializers.ValidationError(errors)
        records = [_record(index, data) for index, data in enumerate(batch.validated_data)]
        results: list[dict] = []
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        writer = ChunkWriter(institution=self.institution, source=ChangeSource.API, job_id=None,
                             actor_id=request.user.pk if getattr(request.user, "is_authenticated", False) else None)
        with transaction.atomic():
            for start in range(0, len(records), CHUNK_ROWS):
                chunk = records[start:start + CHUNK_ROWS]
                chunk_counts, creates, updates = writer.compare(chunk)
                outcome = {record.external_id: "created" for record, _values in creates}
                outcome.update({record.external_id: "updated" for _values, _changes, record in updates})
                writer.write(chunk)
                counts["created"] += chunk_counts.created
                counts["updated"] += chunk_counts.updated
                counts["unchanged"] += chunk_counts.unchanged
                ids = dict(Student.objects.for_institution(self.institution).filter(
                    external_id__in=[record.external_id for record in chunk]).values_list("external_id", "id"))
                results += [{"external_id": record.external_id, "id": ids[record.external_id],
                             "result": outcome.get(record.external_id, "unchanged")} for record in chunk]
        if counts["created"] or counts["updated"]:
            # Like a committed file import: predictions queues a rescore (no job for a synchronous upsert).
            import_committed.send(sender=Student, institution_id=self.institution.pk, job_id=None)
        return Response({**counts, "results": results}, status=status.HTTP_200_OK)


def _record(index: int, data: dict) -> CleanRecord:
    fields = {name: data[name] for name in STUDENT_FIELDS if name in data}
    if "advisor_id" in data:
        advisor = data["advisor_id"]
        fields["advisor_id"] = advisor.pk if advisor is not None else None
    return CleanRecord(row=index, external_id=data["external_id"], fields=fields, features=data.get("features", {}))
