"""Chunked, resumable uploads of large import files through the API (docs/api.md, "Large files
in chunks"; tus-like, kept small).

A session is created with the file's name and total size (and optionally its SHA-256); chunks
are appended in order, each at the offset the server holds (a chunk at another offset is refused
with that offset, so the client resumes from it), streamed to disk 1 MB at a time. Completing
the session checks the size (and the SHA-256) and turns the file into an ordinary
:class:`ImportUpload` of the API channel, whose preview job is queued: the mapping, validation
and commit with its list of changes are the upload page's, nothing is imported before a person
confirms it there. A session never completed is removed by the upload-retention beat task.

Partial files live in ``MEDIA_ROOT/imports/<institution id>/sessions/`` (a folder the stray
clean-up of the uploads leaves alone; the sessions' own expiry removes them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from institutions.access import object_for_input_id
from institutions.models import Institution

from ..models import ImportChannel, ImportUpload, ImportUploadSession
from .errors import ImportFileError, storage_error
from .reading import check_channel_size

READ_BYTES = 1 << 20


class UploadOffsetConflict(ImportFileError):
    """A chunk sent at another offset than the one the server holds (or completion before the
    last byte): the client resumes from ``offset``."""

    def __init__(self, code: str, message: str, *, offset: int):
        super().__init__(code, message, details=[{"offset": offset}])
        self.offset = offset


def session_path(session: ImportUploadSession) -> Path:
    return Path(settings.MEDIA_ROOT) / session.stored_name


def upload_session_expires_at(session: ImportUploadSession):
    """A session not sent to for this long is removed (IMPORT_UPLOAD_RETENTION_DAYS)."""
    return session.updated_at + timedelta(days=settings.IMPORT_UPLOAD_RETENTION_DAYS)


def access_upload_session(*, institution: Institution, session_id) -> ImportUploadSession:
    """The institution's session with ``session_id`` from input (Http404 alike for another
    institution's, a missing or a malformed id)."""
    return object_for_input_id(ImportUploadSession.objects.for_institution(institution), session_id)


def upload_session_create(*, institution: Institution, filename: str, size: int, sha256: str = "",
                          user=None) -> ImportUploadSession:
    """Open a session for a file of ``size`` bytes (at most IMPORT_MAX_BULK_FILE_BYTES; else
    ``file_too_large``). Creates the empty partial file."""
    if size < 1:
        raise ImportFileError("empty_file", "The file is empty (size 0): there is nothing to import.")
    check_channel_size(size, ImportChannel.API)
    name = Path(filename.replace("\\", "/")).name.strip()[:255] or "upload.csv"
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"} else ".csv"
    stored = f"imports/{institution.pk}/sessions/{uuid.uuid4().hex}{suffix}"
    target = Path(settings.MEDIA_ROOT) / stored
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=False)
    except OSError as exc:
        raise storage_error(exc) from exc
    return ImportUploadSession.objects.for_institution(institution).create(
        original_name=name, stored_name=stored, size=size, sha256=sha256.lower(), created_by=user,
    )


def _locked(session: ImportUploadSession) -> ImportUploadSession:
    return ImportUploadSession.objects.for_institution(session.institution).select_for_update().get(pk=session.pk)


def upload_session_append(*, session: ImportUploadSession, offset: int, stream, length: int) -> ImportUploadSession:
    """Append ``length`` bytes read from ``stream`` at ``offset``, which must be the session's
    offset (else :class:`UploadOffsetConflict`, 409). Streamed to disk and fsynced before the new
    offset is stored; a chunk cut short (the client went away) leaves the offset where it was."""
    if length < 1:
        raise ImportFileError("empty_chunk", "The chunk is empty: send the file's next bytes as the body "
                                             "(Content-Length must say their number).")
    with transaction.atomic():
        session = _locked(session)  # one chunk at a time per session
        if session.upload_id is not None:
            raise UploadOffsetConflict("upload_completed", "This upload was completed already; it takes no more "
                                                           "chunks.", offset=session.offset)
        if offset != session.offset:
            raise UploadOffsetConflict(
                "offset_mismatch", f"The chunk was sent at offset {offset}, but the server holds {session.offset} "
                                   f"bytes of this file: send the bytes from offset {session.offset}.",
                offset=session.offset)
        if offset + length > session.size:
            raise ImportFileError(
                "chunk_beyond_size", f"The chunk ends at byte {offset + length}, beyond the file's declared size "
                                     f"({session.size} bytes). Nothing of it was kept.")
        path = session_path(session)
        received = 0
        try:
            with path.open("r+b") as handle:
                handle.seek(offset)
                handle.truncate()  # whatever a cut-short chunk left behind
                while received < length:
                    piece = stream.read(min(READ_BYTES, length - received))
                    if not piece:
                        break
                    handle.write(piece)
                    received += len(piece)
                if received < length:
                    handle.truncate(offset)
                else:
                    handle.flush()
                    os.fsync(handle.fileno())
        except FileNotFoundError:
            raise ImportFileError("upload_expired", "This upload's partial file is no longer kept (the session "
                                                    "expired); create a new upload.") from None
        except OSError as exc:
            raise storage_error(exc) from exc
        if received < length:
            raise ImportFileError("incomplete_chunk", f"The chunk ended after {received} of the {length} bytes "
                                                      f"announced; nothing of it was kept. Send it again from offset "
                                                      f"{offset}.")
        session.offset = offset + length
        session.save(update_fields=["offset", "updated_at"])
    return session


def upload_session_complete(*, session: ImportUploadSession, user=None) -> ImportUpload:
    """Check the size (and the declared SHA-256) and make the file an ordinary upload of the API
    channel, then queue its preview job (the page's). Completing twice returns the same upload.
    A SHA-256 that does not match discards the bytes received (the session starts over at 0)."""
    from .uploads import import_upload_preview_start

    refusal = None
    with transaction.atomic():
        session = _locked(session)
        if session.upload_id is not None:
            return ImportUpload.objects.for_institution(session.institution).get(pk=session.upload_id)
        if session.offset != session.size:
            raise UploadOffsetConflict(
                "upload_incomplete", f"The server holds {session.offset} of the file's {session.size} bytes: send "
                                     f"the rest from offset {session.offset}, then complete.", offset=session.offset)
        path = session_path(session)
        try:
            on_disk = path.stat().st_size
        except FileNotFoundError:
            raise ImportFileError("upload_expired", "This upload's partial file is no longer kept (the session "
                                                    "expired); create a new upload.") from None
        check_channel_size(on_disk, ImportChannel.API)
        digest = hashlib.sha256()
        if session.sha256:
            with path.open("rb") as handle:
                while piece := handle.read(READ_BYTES):
                    digest.update(piece)
        if on_disk != session.size:
            refusal = ImportFileError(
                "size_mismatch", f"The file received holds {on_disk} bytes, not the {session.size} declared; "
                                 "nothing was imported. Send it again from offset 0.")
        elif session.sha256 and digest.hexdigest() != session.sha256:
            refusal = ImportFileError(
                "checksum_mismatch", f"The file received has SHA-256 {digest.hexdigest()}, not the "
                                     f"{session.sha256} declared: it was damaged on the way. Nothing was "
                                     "imported; send it again from offset 0.")
        if refusal is not None:
            _restart(session, path)  # the bytes are wrong: the client starts over at offset 0
        else:
            stored = f"imports/{session.institution_id}/{uuid.uuid4().hex}{path.suffix}"
            try:
                os.replace(path, Path(settings.MEDIA_ROOT) / stored)
            except OSError as exc:
                raise storage_error(exc) from exc
            upload = ImportUpload.objects.for_institution(session.institution).create(
                original_name=session.original_name, stored_name=stored, size=on_disk, uploaded_by=user,
                channel=ImportChannel.API,
            )
            session.upload = upload
            session.completed_at = timezone.now()
            session.save(update_fields=["upload", "completed_at", "updated_at"])
            import_upload_preview_start(upload=upload, user=user)
    if refusal is not None:
        raise refusal
    return upload


def _restart(session: ImportUploadSession, path: Path) -> None:
    with contextlib.suppress(OSError), path.open("r+b") as handle:
        handle.truncate(0)
    session.offset = 0
    session.save(update_fields=["offset", "updated_at"])


def upload_session_delete(*, session: ImportUploadSession) -> None:
    """Abandon a session: its partial file and row go (a completed one's upload stays)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(session_path(session))
    ImportUploadSession.objects.for_institution(session.institution).filter(pk=session.pk).delete()


def upload_sessions_expire(*, institution: Institution, cutoff) -> int:
    """Remove the sessions not sent to since ``cutoff``: an abandoned one's partial file and row,
    a completed one's row (its file is the upload's, kept by the upload's own retention)."""
    stale = ImportUploadSession.objects.for_institution(institution).filter(updated_at__lt=cutoff)
    removed = 0
    for session in stale:
        upload_session_delete(session=session)
        removed += 1
    return removed
