"""Chunked, resumable uploads of large import files (docs/api.md, "Large files in chunks").

``POST imports/uploads/`` opens a session (name, size, optional sha256) -> 201, offset 0;
``PATCH imports/uploads/<id>/`` appends a raw chunk at the ``Upload-Offset`` header's offset (a
wrong offset is 409 with the server's offset); ``GET`` tells the offset; ``POST .../complete/``
checks the size (and sha256) and makes the file an ordinary upload whose preview job is queued:
the mapping, the validation and the commit with its list of changes are the upload page's. The
views only translate HTTP; :mod:`.importing.chunked` does the work.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, parsers, serializers, status
from rest_framework.response import Response
from rest_framework.reverse import reverse

from institutions.api.base import InstitutionScopeMixin
from institutions.api.errors import error_body

from . import tasks  # noqa: F401 - registers the import job runner
from .importing import ImportFileError
from .importing.chunked import (
    UploadOffsetConflict,
    access_upload_session,
    upload_session_append,
    upload_session_complete,
    upload_session_create,
    upload_session_delete,
    upload_session_expires_at,
)
from .importing.errors import STORAGE_ERROR_CODES
from .models import ImportUploadSession

OFFSET_HEADER = "Upload-Offset"
ERROR_STATUS = {
    "file_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "offset_mismatch": status.HTTP_409_CONFLICT,
    "upload_incomplete": status.HTTP_409_CONFLICT,
    "upload_completed": status.HTTP_409_CONFLICT,
    "upload_expired": status.HTTP_409_CONFLICT,
    **dict.fromkeys(STORAGE_ERROR_CODES, status.HTTP_503_SERVICE_UNAVAILABLE),
}


class ChunkParser(parsers.BaseParser):
    """A chunk's raw bytes: handed to the service as the request's stream, never read here."""

    media_type = "application/offset+octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"stream": stream}


class OctetStreamChunkParser(ChunkParser):
    media_type = "application/octet-stream"


def _user(request):
    return request.user if getattr(request.user, "pk", None) and request.user.is_authenticated else None


def _refused(exc: ImportFileError) -> Response:
    body = error_body(code=exc.code, message=exc.message)
    if isinstance(exc, UploadOffsetConflict):
        body["offset"] = exc.offset
    response = Response(body, status=ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))
    if isinstance(exc, UploadOffsetConflict):
        response[OFFSET_HEADER] = str(exc.offset)
    if exc.code in STORAGE_ERROR_CODES:
        response["Retry-After"] = "60"
    return response


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1,
                      "maximum": max(settings.IMPORT_MAX_BULK_FILE_BYTES, settings.IMPORT_MAX_FILE_BYTES)})
class FileSizeField(serializers.IntegerField):
    """Bytes, from 1; beyond IMPORT_MAX_BULK_FILE_BYTES (read per request) is the service's 413."""


class UploadSessionCreateSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255, help_text="The file's name (.csv, .tsv, .txt or .xlsx)")
    size = FileSizeField(min_value=1, help_text="The whole file's size in bytes (at most IMPORT_MAX_BULK_FILE_BYTES; "
                                                "beyond: 413 file_too_large)")
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False,
                                    help_text="The whole file's SHA-256 (hex): checked at completion")


class UploadSessionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    filename = serializers.CharField(source="original_name")
    completed = serializers.SerializerMethodField()
    upload_id = serializers.IntegerField(allow_null=True)
    chunk_max_bytes = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = ImportUploadSession
        fields = ["id", "url", "filename", "size", "sha256", "offset", "completed", "upload_id", "chunk_max_bytes",
                  "created_at", "expires_at"]
        read_only_fields = fields

    def get_url(self, session) -> str:
        return reverse("api-import-upload-session", args=[session.institution.slug, session.pk],
                       request=self.context.get("request"))

    def get_completed(self, session) -> bool:
        return session.upload_id is not None

    def get_chunk_max_bytes(self, session) -> int:
        return settings.IMPORT_UPLOAD_CHUNK_MAX_BYTES

    def get_expires_at(self, session) -> OpenApiTypes.DATETIME:
        return serializers.DateTimeField().to_representation(upload_session_expires_at(session))


# 400, 413 and the rest: the API's one error body (institutions.api.schema adds them); a 409 adds
# the server's offset to resume from.
SESSION_ERRORS = {409: OpenApiResponse(
    inline_serializer("UploadOffsetConflict", {
        "code": serializers.CharField(help_text="offset_mismatch, upload_incomplete, upload_completed or "
                                                "upload_expired"),
        "message": serializers.CharField(),
        "errors": serializers.DictField(),
        "offset": serializers.IntegerField(help_text="The bytes the server holds: send the file from there"),
    }), description="The chunk (or the completion) does not fit the server's offset")}


class _SessionView(InstitutionScopeMixin, generics.GenericAPIView):
    read_capability = "manage_data"
    write_capability = "manage_data"
    api_scope = "imports"
    serializer_class = UploadSessionSerializer

    def session(self) -> ImportUploadSession:
        return access_upload_session(institution=self.institution, session_id=self.kwargs["session_id"])

    def answer(self, session, code=status.HTTP_200_OK) -> Response:
        response = Response(UploadSessionSerializer(session, context=self.get_serializer_context()).data,
                            status=code)
        response[OFFSET_HEADER] = str(session.offset)
        return response


class UploadSessionListView(_SessionView):
    """Open a chunked upload of a large file: 201 with its id and offset 0."""

    @extend_schema(request=UploadSessionCreateSerializer, responses={201: UploadSessionSerializer})
    def post(self, request, *args, **kwargs):
        serializer = UploadSessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            session = upload_session_create(institution=self.institution, filename=data["filename"],
                                            size=data["size"], sha256=data.get("sha256", ""), user=_user(request))
        except ImportFileError as exc:
            return _refused(exc)
        response = self.answer(session, status.HTTP_201_CREATED)
        response["Location"] = response.data["url"]
        return response


class UploadSessionDetailView(_SessionView):
    """A chunked upload: GET its offset, PATCH the next chunk, DELETE to abandon it."""

    parser_classes = [ChunkParser, OctetStreamChunkParser]

    @extend_schema(responses={200: UploadSessionSerializer})
    def get(self, request, *args, **kwargs):
        return self.answer(self.session())

    @extend_schema(
        request={ChunkParser.media_type: OpenApiTypes.BINARY, OctetStreamChunkParser.media_type: OpenApiTypes.BINARY},
        parameters=[OpenApiParameter(
            OFFSET_HEADER, {"type": "integer", "minimum": 0}, OpenApiParameter.HEADER, required=True,
            description="Where the chunk starts in the file: the upload's current offset (else 409)")],
        responses={200: UploadSessionSerializer, **SESSION_ERRORS},
        description="Append the chunk (the raw body, at most IMPORT_UPLOAD_CHUNK_MAX_BYTES) at Upload-Offset; "
                    "answers the new offset.",
    )
    def patch(self, request, *args, **kwargs):
        session = self.session()
        raw = request.headers.get(OFFSET_HEADER, "")
        if not raw.strip().isdigit():
            message = _("The %(header)s header must give the chunk's offset in the file, "
                        "a whole number from 0.") % {"header": OFFSET_HEADER}
            return Response(error_body(code="invalid", message=message,
                                       errors={OFFSET_HEADER: [_("A whole number from 0 is required.")]}),
                            status=status.HTTP_400_BAD_REQUEST)
        stream = request.data.get("stream") if isinstance(request.data, dict) else None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        try:
            session = upload_session_append(session=session, offset=int(raw), stream=stream, length=length
                                            if stream is not None else 0)
        except ImportFileError as exc:
            return _refused(exc)
        return self.answer(session)

    @extend_schema(responses={204: None})
    def delete(self, request, *args, **kwargs):
        upload_session_delete(session=self.session())
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadSessionCompleteView(_SessionView):
    """Complete a chunked upload: the file becomes an ordinary upload and its preview job runs."""

    @extend_schema(
        request=None,
        responses={202: inline_serializer("UploadSessionCompleted", {
            "upload_id": serializers.IntegerField(),
            "job_id": serializers.IntegerField(help_text="The preview job (reads the format, header, first rows)"),
            "job_url": serializers.URLField(),
            "import_url": serializers.URLField(help_text=(
                "The upload's import page: choose the mapping, validate, review the changes and confirm the import")),
        }), **SESSION_ERRORS},
    )
    def post(self, request, *args, **kwargs):
        try:
            upload = upload_session_complete(session=self.session(), user=_user(request))
        except ImportFileError as exc:
            return _refused(exc)
        job_url = reverse("api-job-detail", args=[self.institution.slug, upload.preview_job_id], request=request)
        import_url = request.build_absolute_uri(
            reverse("import-detail", args=[self.institution.slug, upload.pk]))
        return Response({"upload_id": upload.pk, "job_id": upload.preview_job_id, "job_url": job_url,
                         "import_url": import_url}, status=status.HTTP_202_ACCEPTED, headers={"Location": job_url})
