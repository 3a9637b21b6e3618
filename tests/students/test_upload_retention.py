"""The clean-up of uploads never committed (issue 17, item 7): after the retention period their
files go and they are marked discarded, one institution at a time; a daily beat entry runs it.
Disk faults on upload are in tests/faults/test_disk_faults.py."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from institutions.models import Job, JobKind, JobStatus
from students.models import ImportUpload, ImportUploadStatus
from students.tasks import expire_import_uploads, expire_institution_import_uploads
from students.upload_files import PARTIAL_SUFFIX

from .import_helpers import GOOD_CSV

pytestmark = pytest.mark.django_db


def _upload(tenant, media: Path, *, days_old: float, status=ImportUploadStatus.VALIDATED, job_status=None):
    institution = tenant.institution
    stored = f"imports/{institution.pk}/{os.urandom(8).hex()}.csv"
    (media / stored).parent.mkdir(parents=True, exist_ok=True)
    (media / stored).write_text(GOOD_CSV)
    upload = ImportUpload.objects.for_institution(institution).create(
        original_name="good.csv", stored_name=stored, size=len(GOOD_CSV), status=status)
    if job_status is not None:
        upload.validation_job = Job.objects.for_institution(institution).create(kind=JobKind.IMPORT, status=job_status)
        upload.save(update_fields=["validation_job"])
    ImportUpload.objects.for_institution(institution).filter(pk=upload.pk).update(
        created_at=timezone.now() - timedelta(days=days_old))
    return upload


def test_uploads_never_committed_are_removed_after_the_retention_period_in_their_institution_only(
    tenant_a, tenant_b, tmp_path, settings,
):
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_UPLOAD_RETENTION_DAYS = 7
    old = _upload(tenant_a, tmp_path, days_old=8)
    old_invalid = _upload(tenant_a, tmp_path, days_old=30, status=ImportUploadStatus.INVALID)
    recent = _upload(tenant_a, tmp_path, days_old=6)
    committed = _upload(tenant_a, tmp_path, days_old=30, status=ImportUploadStatus.COMMITTED)
    busy = _upload(tenant_a, tmp_path, days_old=30, job_status=JobStatus.RUNNING)
    old_b = _upload(tenant_b, tmp_path, days_old=30)
    folder = tmp_path / "imports" / str(tenant_a.institution.pk)
    stray_old, stray_new, dead_partial = folder / "stray.csv", folder / "new.csv", folder / f"x.csv{PARTIAL_SUFFIX}"
    for path in (stray_old, stray_new, dead_partial):
        path.write_text("x")
    month_ago = (timezone.now() - timedelta(days=30)).timestamp()
    os.utime(stray_old, (month_ago, month_ago))
    os.utime(dead_partial, (month_ago, month_ago))

    expire_institution_import_uploads(institution_id=tenant_a.institution.pk)

    def state(upload):
        upload.refresh_from_db()
        return upload.status, (tmp_path / upload.stored_name).exists()

    assert state(old) == (ImportUploadStatus.DISCARDED, False)
    assert state(old_invalid) == (ImportUploadStatus.DISCARDED, False)
    assert state(recent) == (ImportUploadStatus.VALIDATED, True)
    assert state(committed) == (ImportUploadStatus.COMMITTED, True)
    assert state(busy) == (ImportUploadStatus.VALIDATED, True)  # its job is running
    assert state(old_b) == (ImportUploadStatus.VALIDATED, True)  # another institution's: not this task's
    assert not stray_old.exists() and not dead_partial.exists() and stray_new.exists()

    expire_import_uploads()  # the daily beat entry: every institution, each in its own scope
    assert state(old_b) == (ImportUploadStatus.DISCARDED, False)
    assert state(recent) == (ImportUploadStatus.VALIDATED, True)


def test_the_clean_up_is_on_the_beat_schedule_daily(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["expire-import-uploads"]
    assert entry["task"] == expire_import_uploads.name and entry["schedule"] == 24 * 60 * 60
