"""Uploaded files on disk, and the import jobs that preview, validate or commit one.

Files live under ``MEDIA_ROOT/imports/<institution id>/`` (never served by URL) until the job
that commits them ends, or the upload is discarded.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from accounts.language import language_for
from institutions.jobs import (
    DATABASE_CONNECTION_ERRORS,
    JobCancelled,
    JobStopped,
    job_create,
    job_dispatch,
    job_fail,
    job_mark_running,
    job_progress,
    job_succeed,
)
from institutions.models import Institution, Job, JobKind

from .. import sql
from ..models import ChangeSource, ImportChannel, ImportUpload, ImportUploadStatus, StudentChange
from ..signals import import_committed
from ..upload_files import upload_file_write
from .errors import STORAGE_ERROR_CODES, ImportFileError
from .mapping import ImportMappingSpec, mapping_from_dict
from .reading import check_channel_size
from .service import (
    ImportReport,
    Preview,
    _fingerprint_json,
    _students_fingerprint,
    import_file,
    import_mapping_remember,
    import_preview,
)

# The stages an import job reports (stored in English; the import pages translate them).
IMPORT_JOB_STAGES = (gettext_noop("reading the file"), gettext_noop("validating"), gettext_noop("writing"),
                     gettext_noop("done"))

logger = logging.getLogger(__name__)
_ALLOWED_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"}


def upload_path(upload: ImportUpload) -> Path:
    return Path(settings.MEDIA_ROOT) / upload.stored_name


def import_upload_path_exists(upload: ImportUpload) -> bool:
    return upload_path(upload).is_file()


def import_changes_path(job: Job) -> Path:
    """Where an import job's list of changes per student goes (CSV; see importing.changes)."""
    return Path(settings.MEDIA_ROOT) / "imports" / str(job.institution_id) / "changes" / f"{job.pk}.csv"


def _stored_name(institution: Institution, original_name: str) -> str:
    suffix = Path(original_name).suffix.lower()
    suffix = suffix if suffix in _ALLOWED_SUFFIXES else ".csv"
    return f"imports/{institution.pk}/{uuid.uuid4().hex}{suffix}"


def import_changes_file(upload: ImportUpload) -> Path | None:
    """The list of changes per student of the upload's latest finished job that has one: the
    commit's (what it did) once it ran, else the validation's (what it would do)."""
    for job in (upload.commit_job, upload.validation_job):
        if job is not None and job.is_finished:
            path = import_changes_path(job)
            if path.is_file():
                return path
    return None


def import_upload_create(*, institution: Institution, uploaded_file, user=None,
                         channel: str = ImportChannel.PAGE) -> ImportUpload:
    """Store an uploaded file (Django ``UploadedFile``) after checking its size against the
    channel's limit (the page's, or the API's bulk limit). Raises ImportFileError."""
    check_channel_size(uploaded_file.size, channel)
    stored = _stored_name(institution, uploaded_file.name)
    upload_file_write(Path(settings.MEDIA_ROOT) / stored, uploaded_file.chunks())  # all or nothing
    return ImportUpload.objects.for_institution(institution).create(
        original_name=Path(uploaded_file.name).name[:255], stored_name=stored, size=uploaded_file.size,
        uploaded_by=user, channel=channel,
    )


def import_upload_create_from_path(*, institution: Institution, path: Path, user=None) -> ImportUpload:
    """The CLI's entry: copy a local file (up to IMPORT_MAX_BULK_FILE_BYTES) into the
    institution's upload folder, 1 MB at a time."""
    path = Path(path)
    check_channel_size(path.stat().st_size, ImportChannel.CLI)
    stored = _stored_name(institution, path.name)
    with path.open("rb") as source:
        upload_file_write(Path(settings.MEDIA_ROOT) / stored, iter(lambda: source.read(1 << 20), b""))
    return ImportUpload.objects.for_institution(institution).create(
        original_name=path.name[:255], stored_name=stored, size=path.stat().st_size, uploaded_by=user,
        channel=ImportChannel.CLI,
    )


def _delete_file(upload: ImportUpload) -> None:
    try:
        os.remove(upload_path(upload))
    except FileNotFoundError:
        pass
    except OSError as exc:
        # A read-only media folder: what was decided (committed, refused) stands; the retention
        # clean-up (upload_files.import_uploads_expire) removes the file once the folder is writable.
        logger.warning("could not remove the file of import upload %s: %s", upload.pk, exc)


def import_upload_discard(*, upload: ImportUpload) -> None:
    _delete_file(upload)
    ImportUpload.objects.for_institution(upload.institution).filter(pk=upload.pk).update(
        status=ImportUploadStatus.DISCARDED
    )
    upload.status = ImportUploadStatus.DISCARDED


def import_upload_set_mapping(*, upload: ImportUpload, spec: ImportMappingSpec) -> None:
    upload.mapping = spec.as_dict()
    upload.status = ImportUploadStatus.UPLOADED
    upload.save(update_fields=["mapping", "status", "updated_at"])


def import_upload_start(
    *, upload: ImportUpload, commit: bool, valid_rows_only: bool = False, user=None, triggered_by: str = "user",
    dispatch: bool = True, remember_mapping: bool = False,
) -> Job:
    """Create the import job (validate, or validate + commit) for an upload and queue it.

    An upload without a mapping (the API's, when none was given) gets the suggested one in the
    job; ``remember_mapping``: once the job has read the file with the upload's mapping, it
    becomes the institution's remembered one."""
    params = {"upload_id": upload.pk, "commit": commit, "valid_rows_only": valid_rows_only,
              "file": upload.original_name}
    if remember_mapping:
        params["remember_mapping"] = True
    validated = upload.validation_job
    if commit and validated is not None and "students_fingerprint" in (validated.result or {}):
        # The person saw the validation's list of changes: the commit writes only if it still holds.
        params["expected_students"] = validated.result["students_fingerprint"]
    with transaction.atomic():
        job, _ = job_create(
            institution=upload.institution, kind=JobKind.IMPORT, created_by=user, triggered_by=triggered_by,
            params=params,
        )
        if commit:
            upload.commit_job = job
            upload.status = ImportUploadStatus.COMMITTING
        else:
            upload.validation_job = job
            upload.commit_job = None  # a commit refused as stale (see import_job_run) is behind us
            upload.status = ImportUploadStatus.VALIDATING
        upload.save(update_fields=["commit_job", "validation_job", "status", "updated_at"])
        if dispatch:
            job_dispatch(job)
        else:
            # Run in this process (the CLI): mark it sent so the re-dispatcher never queues it too.
            Job.objects.for_institution(upload.institution).filter(pk=job.pk).update(dispatched_at=timezone.now())
    return job


def import_upload_preview_start(*, upload: ImportUpload, user=None) -> Job:
    """Queue the preview job: the worker reads the file's format, header and first rows, checks a
    workbook against the limits, suggests the mapping and stores it all on the upload."""
    params = {"upload_id": upload.pk, "preview": True, "file": upload.original_name}
    with transaction.atomic():
        job, _ = job_create(institution=upload.institution, kind=JobKind.IMPORT, created_by=user, params=params)
        upload.preview_job = job
        upload.preview = {}
        upload.save(update_fields=["preview_job", "preview", "updated_at"])
        job_dispatch(job)
    return job


def import_preview_job_run(*, institution: Institution, job: Job, upload: ImportUpload) -> Preview | None:
    """The preview job: store the upload's preview, or fail with the reason the file is refused
    (the file is then removed and the upload marked failed; nothing was written)."""
    job_mark_running(job, stage="reading the file")
    try:
        preview = import_preview(institution=institution, path=upload_path(upload),
                                 original_name=upload.original_name, channel=upload.channel)
    except FileNotFoundError:
        job_fail(job, error="The file is no longer kept (the upload was discarded); upload it again.")
        return None
    except ImportFileError as exc:
        job_fail(job, error=exc.message, result={"file_error": exc.as_dict()})
        _delete_file(upload)
        _finish_upload(upload, ImportUploadStatus.FAILED, commit=False)
        return None
    except Exception:
        logger.exception("preview job %s of institution %s failed", job.pk, institution.pk)
        job_fail(job, error="Reading the file stopped on an unexpected error; nothing was written. "
                            "The operators have been told.")
        raise
    ImportUpload.objects.for_institution(institution).filter(pk=upload.pk).update(preview=preview.as_dict())
    job_succeed(job, result={"format": preview.info.format, "columns": len(preview.info.header),
                             "estimated_rows": preview.estimated_rows})
    return preview


def import_job_language(*, institution: Institution, job: Job) -> str:
    """The language an import job writes its reasons in: for a file uploaded on the import page,
    that of the pages of the person who started the job (their own choice, else the institution's
    default); for the API and the command line, the site's (English), as before."""
    channel = (ImportUpload.objects.for_institution(institution).filter(pk=job.params.get("upload_id"))
               .values_list("channel", flat=True).first())
    user = job.created_by
    if channel != ImportChannel.PAGE or user is None:
        return settings.LANGUAGE_CODE
    return language_for(user, institution.slug) or settings.LANGUAGE_CODE


def import_job_run(*, institution: Institution, job: Job, progress=None) -> ImportReport | Preview | None:
    """Run one import job to the end (the Celery task and the CLI both call this).

    Returns the report (the preview, for a preview job), or None when the file was refused as a
    whole (the job says why). The reasons it stores for refused cells are in the language of the
    person who started it on the import page (:func:`import_job_language`), who reads the report;
    the report's summary and the page around it follow each reader's language.
    """
    with translation.override(import_job_language(institution=institution, job=job)):
        return _import_job_run(institution=institution, job=job, progress=progress)


def _import_job_run(*, institution: Institution, job: Job, progress=None) -> ImportReport | Preview | None:
    params = job.params
    upload = ImportUpload.objects.for_institution(institution).get(pk=params["upload_id"])
    if params.get("preview"):
        return import_preview_job_run(institution=institution, job=job, upload=upload)
    commit = bool(params.get("commit"))
    job_mark_running(job, stage="validating")
    if commit and job.attempts > 1 and _committed_by(job):
        # An earlier attempt committed and died before saying so: the data is in; never write it twice.
        job_succeed(job, result={"message": "An earlier attempt of this job committed the import before its "
                                            "worker stopped; nothing was written again."})
        _finish_upload(upload, ImportUploadStatus.COMMITTED, commit)
        return None
    if commit and "expected_students" not in params:
        # The state this commit is validated against, fixed by its first attempt: a redelivered or
        # re-queued attempt after a newer import committed is refused instead of writing older data.
        params = {**params, "expected_students": _fingerprint_json(_students_fingerprint(institution)),
                  "expected_students_at_start": True}
        Job.objects.for_institution(institution).filter(pk=job.pk).update(params=params)
        job.params = params

    reporter = _JobProgress(job)

    def on_progress(stage: str, done: int, total: int) -> None:
        reporter(stage, done, total)
        if progress is not None:
            progress(stage, done, total)

    report = None
    suggested = None
    try:
        if not upload.mapping:
            # A file sent through the API without a mapping: the suggestion is made here, in the
            # worker, as the page's preview job makes it (the request only stored the file).
            suggested = import_preview(institution=institution, path=upload_path(upload),
                                       original_name=upload.original_name, channel=upload.channel).mapping.as_dict()
            ImportUpload.objects.for_institution(institution).filter(pk=upload.pk).update(mapping=suggested)
            upload.mapping = suggested
        report = import_file(
            institution=institution, path=upload_path(upload), original_name=upload.original_name,
            mapping=upload.mapping, commit=commit, valid_rows_only=bool(params.get("valid_rows_only")),
            source=ChangeSource.IMPORT if job.triggered_by != "api" else ChangeSource.API,
            actor=job.created_by, job=job, progress=on_progress, changes_path=import_changes_path(job),
            expected_students=_expected_students(job), channel=upload.channel,
        )
    except ImportFileError as exc:
        reporter.close()
        if exc.code == "students_changed" and job.attempts > 1 and params.get("expected_students_at_start"):
            exc.message = (
                f"This import was interrupted (attempt {job.attempts - 1} stopped before it finished) and students "
                "were written since it started (by a newer import, the API or a person). Running it now would "
                "overwrite newer data with this older file, so nothing was written. Validate the file again if "
                "it is still wanted.")
        if exc.code in STORAGE_ERROR_CODES:
            # The server's disk refused the list of changes: the file is fine and kept, nothing was
            # written (the commit's transaction rolled back), and the same upload can run again.
            job_fail(job, error=exc.message, result={"storage_error": exc.as_dict()})
            _reopen_upload(upload)
            return None
        job_fail(job, error=exc.message, result={"file_error": exc.as_dict()})
        if exc.code == "students_changed":  # the file is fine: keep it, to be validated again
            _reopen_upload(upload)
            return None
        _finish_upload(upload, ImportUploadStatus.FAILED if commit else ImportUploadStatus.INVALID, commit)
        return None
    except (JobStopped, *DATABASE_CONNECTION_ERRORS) as exc:
        # Cancelled (nothing was written: the commit is one transaction), taken over by another
        # attempt, or the database went away (re-queued): the file stays for what comes next.
        reporter.close()
        if isinstance(exc, JobCancelled):
            _reopen_upload(upload)
        raise
    except Exception:
        logger.exception("import job %s of institution %s failed", job.pk, institution.pk)
        reporter.close()
        job_fail(job, error="The import stopped on an unexpected error; nothing was written. "
                            "The operators have been told.")
        _finish_upload(upload, ImportUploadStatus.FAILED, commit)
        raise
    reporter.close()
    if params.get("remember_mapping"):  # a mapping the API was given, now known to fit the file
        import_mapping_remember(institution=institution, spec=mapping_from_dict(upload.mapping))
    counts = {key: getattr(report, key) for key in ("rows", "created", "updated", "unchanged", "error_rows",
                                                    "skipped")}
    result = report.as_dict()
    if suggested is not None:
        result["mapping"] = suggested
    if report.has_errors and not report.committed:
        job_fail(job, error=report.summary, counts=counts, result=result)
        _finish_upload(upload, ImportUploadStatus.INVALID, commit)
        return report
    job_succeed(job, counts=counts, result=result)
    _finish_upload(upload, ImportUploadStatus.COMMITTED if commit else ImportUploadStatus.VALIDATED, commit)
    if commit:
        import_committed.send(sender=ImportUpload, institution_id=institution.pk, job_id=job.pk)
    return report


class _JobProgress:
    """Job progress that pollers can see even while the import's transaction is open.

    Inside the write transaction the update goes through a second connection, whose writes commit
    at once.
    """

    def __init__(self, job: Job):
        self.job = job
        self.side = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not connection.in_atomic_block:
            job_progress(self.job, done=done, total=total, stage=stage)
            return
        if self.side is None:
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)
        now = timezone.now()
        with self.side.cursor() as cursor:
            cursor.execute(sql.JOB_PROGRESS, {
                "done": done, "total": total, "stage": stage, "now": now, "job_id": self.job.pk,
                "institution_id": self.job.institution_id, "attempt": self.job.attempts,
                "lease": now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
            })
            row = cursor.fetchone()
        # No row: the job is out of this connection's sight (a caller's open transaction holds it).
        if row is not None and row[0]:
            raise JobCancelled(f"job #{self.job.pk} was cancelled")

    def close(self) -> None:
        if self.side is not None:
            self.side.close()
            self.side = None


def _expected_students(job: Job) -> list | bool | None:
    """What the commit must find, or False for no check. The state fixed at a job's first attempt
    binds only its later attempts: the first one compares rows again under the import lock, so an
    import that committed while it waited for the lock is no reason to refuse it."""
    params = job.params
    if "expected_students" not in params or (params.get("expected_students_at_start") and job.attempts <= 1):
        return False
    return params["expected_students"]


def import_upload_reopen_after_stopped_job(*, institution: Institution, job: Job) -> None:
    """An import job ended without its task (cancelled while queued, given up by the sweeper):
    its upload waits for a new validation or commit instead of showing 'committing' forever. The
    file is kept: nothing of it was written."""
    if job.kind != JobKind.IMPORT or "upload_id" not in job.params:
        return
    ImportUpload.objects.for_institution(institution).filter(
        pk=job.params["upload_id"], status__in=(ImportUploadStatus.VALIDATING, ImportUploadStatus.COMMITTING),
    ).update(status=ImportUploadStatus.UPLOADED)


def _committed_by(job: Job) -> bool:
    return StudentChange.objects.for_institution(job.institution).filter(job=job).exists()


def _reopen_upload(upload: ImportUpload) -> None:
    ImportUpload.objects.for_institution(upload.institution).filter(pk=upload.pk).update(
        status=ImportUploadStatus.UPLOADED)
    upload.status = ImportUploadStatus.UPLOADED


def _finish_upload(upload: ImportUpload, status: str, commit: bool) -> None:
    if commit:
        _delete_file(upload)
    ImportUpload.objects.for_institution(upload.institution).filter(pk=upload.pk).update(status=status)
    upload.status = status
