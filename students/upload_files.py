"""Uploaded import files on disk: written so that a failed write leaves nothing behind, and
removed when an upload was never committed within ``IMPORT_UPLOAD_RETENTION_DAYS``.

A write goes to ``<name>.partial`` beside its final name and is renamed only when every byte is
on disk (flushed and fsynced). Disk full, a quota, a read-only or missing media folder: the
partial file is removed, nothing is recorded, and the person (page or API) is told which of these
it was, in words an operator can act on; the next upload works as soon as there is room again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from institutions.models import ACTIVE_JOB_STATUSES, Institution

from .importing.errors import storage_error
from .models import ImportUpload, ImportUploadStatus

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"


def upload_file_write(target: Path, chunks) -> None:
    """Write ``chunks`` (bytes) to ``target``, all or nothing. Raises ImportFileError with one of
    :data:`.importing.errors.STORAGE_ERROR_CODES` when the disk refuses; no partial file is left
    behind."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("xb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        logger.error("could not store an upload at %s: %s", target, exc)
        raise storage_error(exc) from exc


def import_uploads_expire(*, institution: Institution, now=None) -> dict[str, int]:
    """Remove the files of this institution's uploads never committed within the retention period
    (marked discarded, the row and its jobs kept), and stray files of its upload folder no upload
    names (a crash between the write and the row, an old partial write). An upload whose job is
    queued or running is left alone; chunked uploads (API) not sent to within the period are
    removed with their partial file. Returns counts."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.IMPORT_UPLOAD_RETENTION_DAYS)
    stale = (ImportUpload.objects.for_institution(institution)
             .filter(created_at__lt=cutoff)
             .exclude(status__in=(ImportUploadStatus.COMMITTED, ImportUploadStatus.DISCARDED))
             .exclude(validation_job__status__in=ACTIVE_JOB_STATUSES)
             .exclude(commit_job__status__in=ACTIVE_JOB_STATUSES))
    expired = 0
    for upload in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(Path(settings.MEDIA_ROOT) / upload.stored_name)
        expired += ImportUpload.objects.for_institution(institution).filter(pk=upload.pk).exclude(
            status=ImportUploadStatus.COMMITTED).update(status=ImportUploadStatus.DISCARDED)
    from .importing.chunked import upload_sessions_expire  # the chunked uploads never completed

    return {"expired": expired, "strays": _remove_strays(institution, cutoff=cutoff.timestamp()),
            "sessions": upload_sessions_expire(institution=institution, cutoff=cutoff)}


def _remove_strays(institution: Institution, *, cutoff: float) -> int:
    folder = Path(settings.MEDIA_ROOT) / "imports" / str(institution.pk)
    if not folder.is_dir():
        return 0
    named = set(ImportUpload.objects.for_institution(institution).values_list("stored_name", flat=True))
    removed = 0
    for path in folder.iterdir():  # the changes/ folder (job reports) is a folder: left alone
        if not path.is_file():
            continue
        relative = f"imports/{institution.pk}/{path.name}"
        # A partial write older than an hour is dead (a write takes seconds); a finished file
        # no upload names is removed after the retention period, like an upload.
        dead = path.name.endswith(PARTIAL_SUFFIX) and path.stat().st_mtime < time.time() - 3600
        if dead or (relative not in named and path.stat().st_mtime < cutoff):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed
