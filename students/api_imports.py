"""File imports over the API: upload a CSV/XLSX, get 202 and a job to poll (``/jobs/<id>/``).

The same service, mapping and report as the upload page and ``manage.py import_students``: the
request only stores the file (refusing one beyond IMPORT_MAX_BULK_FILE_BYTES; the page's limit,
IMPORT_MAX_FILE_BYTES, is lower; larger files in chunks: :mod:`.api_uploads`); the job reads it in the worker, suggests
the mapping if none was given, validates the whole file and, unless ``dry_run``, commits it; its
``result`` holds the report (counts and every problem with row, column, value and reason) and
``result.file_error`` says why a file was refused as a whole.
"""

from __future__ import annotations

import json

from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, parsers, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse

from audit.models import AccessAction
from audit.services import access_record_for_request
from institutions.api.base import InstitutionScopeMixin
from institutions.api.errors import error_body

from . import tasks  # noqa: F401 - registers the import job runner
from .importing import ImportFileError, mapping_from_dict
from .importing.errors import STORAGE_ERROR_CODES
from .importing.selectors import access_import_upload
from .importing.uploads import (
    import_changes_file,
    import_upload_create,
    import_upload_set_mapping,
    import_upload_start,
)
from .models import ImportChannel

FILE_ERROR_STATUS = {
    "file_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    # The server's disk refused the file (full, read-only): not the client's fault; retry later.
    **dict.fromkeys(STORAGE_ERROR_CODES, status.HTTP_503_SERVICE_UNAVAILABLE),
}


class ImportFileRequestSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True,  # the import says why an empty file is refused
                                 help_text="CSV (any common delimiter, UTF-8 or Windows-1252) or XLSX")
    mapping = serializers.CharField(
        required=False, allow_blank=True,  # empty: none given
        help_text="Mapping JSON (see docs/imports.md); default: the institution's remembered mapping, else the "
                  "one suggested from the headers",
    )
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Validate and count; write nothing")
    valid_rows_only = serializers.BooleanField(
        required=False, default=False, help_text="Import the valid rows even if others have errors (never the default)"
    )


class ImportFileView(InstitutionScopeMixin, generics.GenericAPIView):
    """Upload a file to import; answers 202 with the import job to poll."""

    read_capability = "manage_data"
    write_capability = "manage_data"
    api_scope = "imports"
    serializer_class = ImportFileRequestSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportFileRequestSerializer},
        responses={202: inline_serializer("ImportAccepted", {
            "job_id": serializers.IntegerField(), "job_url": serializers.URLField(),
            "upload_id": serializers.IntegerField(),
            "mapping": serializers.JSONField(allow_null=True, help_text=(
                "The mapping given; null when none was: the job uses the remembered/suggested one and returns it "
                "as result.mapping")),
            "changes_url": serializers.URLField(),
        })},
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        spec = None
        try:
            if data.get("mapping"):  # its form is checked here; whether it fits the file's header, by the job
                try:
                    spec = mapping_from_dict(json.loads(data["mapping"]))
                except ValueError as exc:
                    raise ImportFileError("invalid_mapping", f"The mapping is not valid JSON: {exc}.") from None
            upload = import_upload_create(institution=self.institution, uploaded_file=data["file"],
                                          user=request.user if request.user.is_authenticated else None,
                                          channel=ImportChannel.API)  # up to IMPORT_MAX_BULK_FILE_BYTES
        except ImportFileError as exc:
            return self._refused(exc)
        if spec is not None:
            import_upload_set_mapping(upload=upload, spec=spec)
        # The file is read in the worker: the job suggests a mapping when none was given, checks the
        # mapping against the header and refuses a hostile file there (result.file_error).
        user = request.user if getattr(request.user, "pk", None) and request.user.is_authenticated else None
        job = import_upload_start(upload=upload, commit=not data["dry_run"], valid_rows_only=data["valid_rows_only"],
                                  user=user, triggered_by="api", remember_mapping=spec is not None)
        job_url = reverse("api-job-detail", args=[self.institution.slug, job.pk], request=request)
        changes_url = reverse("api-import-changes", args=[self.institution.slug, upload.pk], request=request)
        return Response({"job_id": job.pk, "job_url": job_url, "upload_id": upload.pk,
                         "mapping": spec.as_dict() if spec is not None else None,
                         "changes_url": changes_url},
                        status=status.HTTP_202_ACCEPTED, headers={"Location": job_url})

    def _refused(self, exc: ImportFileError) -> Response:
        response = Response(error_body(code=exc.code, message=exc.message, errors={"file": [exc.message]}),
                            status=FILE_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))
        if exc.code in STORAGE_ERROR_CODES:
            response["Retry-After"] = "60"
        return response


class ImportChangesView(InstitutionScopeMixin, generics.GenericAPIView):
    """Every student's change as CSV (row, external_id, action, field, old, new, cleared): what a
    dry run found the file would do, or what the import did, once its job has finished (404
    before). The job's ``result.changes`` holds the first of them."""

    read_capability = "manage_data"
    write_capability = "manage_data"
    api_scope = "imports"

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), 404: None})
    def get(self, request, *args, **kwargs):
        upload = access_import_upload(institution=self.institution, upload_id=kwargs["upload_id"])
        path = import_changes_file(upload)
        if path is None:
            raise NotFound(_("No list of changes for this upload yet: wait for its job to finish."))
        response = FileResponse(path.open("rb"), as_attachment=True, filename=f"import-{upload.pk}-changes.csv",
                                content_type="text/csv; charset=utf-8")
        access_record_for_request(request, institution=self.institution, action=AccessAction.IMPORT_CHANGES_EXPORT,
                                  object_id=upload.pk)
        return response
