"""Disk faults on upload and in the import jobs that write beside it (issue 17, item 7); the
clean-up of uploads never committed is tested in tests/students/test_upload_retention.py.

The faults are real ones: MEDIA_ROOT on a tmpfs of 64 KB (disk full), on a read-only tmpfs or a
read-only folder, or under a regular file (no folder can be made). Mounting needs root; where
neither a mount nor a permission can make a folder unwritable the test is skipped, never faked.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from institutions.models import Job, JobStatus
from students.importing import import_preview
from students.importing.uploads import (
    import_changes_path,
    import_job_run,
    import_upload_create_from_path,
    import_upload_preview_start,
    import_upload_set_mapping,
    import_upload_start,
    upload_path,
)
from students.models import ImportUpload, ImportUploadStatus, Student
from tests.students.import_helpers import GOOD_CSV, database_state

pytestmark = pytest.mark.django_db


class Tmpfs:
    def __init__(self, path: Path, size: str):
        self.path, self.size = path, size

    def mount(self, *options: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        opts = ",".join([f"size={self.size}", *options])
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(self.path)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")

    def remount(self, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.path)], check=False)


def _media_on_tmpfs(tmp_path, settings, size: str):
    disk = Tmpfs(tmp_path / "media", size)
    disk.mount()
    settings.MEDIA_ROOT = disk.path
    try:
        yield disk
    finally:
        disk.unmount()


@pytest.fixture
def small_disk(tmp_path, settings):
    yield from _media_on_tmpfs(tmp_path, settings, "64k")


@pytest.fixture
def import_disk(tmp_path, settings):
    """Room for an upload and the lists of changes of its validation and commit, once it is freed."""
    yield from _media_on_tmpfs(tmp_path, settings, "256k")


def _files(root: Path) -> list[Path]:
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


def _big_csv() -> bytes:
    rows = "\n".join(f"X{index:06d},Student {index},3,yes,f" for index in range(6000))
    return ("student_id,name,units_approved,tuition_up_to_date,gender\n" + rows + "\n").encode()


def test_a_full_disk_says_so_on_the_page_leaves_no_partial_file_and_later_uploads_work(
    client, tenant_a, tenant_b, small_disk,
):
    client.force_login(tenant_a.admin)
    big = _big_csv()
    assert len(big) > 64 * 1024
    response = client.post(reverse("import-upload", args=["alpha"]), {"file": SimpleUploadedFile("big.csv", big)})
    assert response.status_code in (200, 400)
    assert "upload storage is full" in response.content.decode()
    assert _files(small_disk.path) == []  # the partial write is gone
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()

    response = client.post(reverse("import-upload", args=["alpha"]),
                           {"file": SimpleUploadedFile("good.csv", GOOD_CSV.encode())})
    assert response.status_code == 302  # on to the mapping page: the disk had room for this one
    upload = ImportUpload.objects.for_institution(tenant_a.institution).get()
    assert (small_disk.path / upload.stored_name).read_bytes() == GOOD_CSV.encode()
    assert not ImportUpload.objects.for_institution(tenant_b.institution).exists()


def test_a_full_disk_answers_the_api_with_503_and_its_code(api_client, tenant_a, tenant_b, small_disk):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(reverse("api-import-file", args=["alpha"]),
                               {"file": SimpleUploadedFile("big.csv", _big_csv())}, format="multipart")
    assert response.status_code == 503
    assert response.json()["code"] == "storage_full" and "file" in response.json()["errors"]
    assert int(response["Retry-After"]) > 0
    assert _files(small_disk.path) == []
    # B's administrator is refused A's endpoint as always; nothing of B's is written.
    api_client.force_authenticate(tenant_b.admin)
    assert api_client.post(reverse("api-import-file", args=["alpha"]),
                           {"file": SimpleUploadedFile("good.csv", GOOD_CSV.encode())},
                           format="multipart").status_code == 404


def test_a_read_only_media_folder_gives_its_own_message_and_uploads_work_once_it_is_writable(
    client, tenant_a, tenant_b, tmp_path, settings,
):
    disk = Tmpfs(tmp_path / "media", "1m")
    if os.geteuid() == 0:
        disk.mount("ro")
    else:
        disk.path.mkdir()
        disk.path.chmod(0o555)
    settings.MEDIA_ROOT = disk.path
    try:
        client.force_login(tenant_a.admin)
        response = client.post(reverse("import-upload", args=["alpha"]),
                               {"file": SimpleUploadedFile("good.csv", GOOD_CSV.encode())})
        assert "media folder is read-only" in response.content.decode()
        assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()
        if os.geteuid() == 0:
            disk.remount("rw")
        else:
            disk.path.chmod(0o755)
        response = client.post(reverse("import-upload", args=["alpha"]),
                               {"file": SimpleUploadedFile("good.csv", GOOD_CSV.encode())})
        assert response.status_code == 302
        assert len(_files(disk.path)) == 1
    finally:
        if os.geteuid() == 0:
            disk.unmount()


def test_a_media_root_that_cannot_be_made_is_a_message_not_a_500(api_client, tenant_a, tenant_b, tmp_path, settings):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.MEDIA_ROOT = blocker / "media"
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(reverse("api-import-file", args=["alpha"]),
                               {"file": SimpleUploadedFile("good.csv", GOOD_CSV.encode())}, format="multipart")
    assert response.status_code == 503 and response.json()["code"] == "storage_unavailable"


# The import jobs: a validation or commit writes its list of changes per student (a CSV) to the
# media folder as it compares; the disk can refuse it there while the upload itself is on disk.

def _new_students_csv(rows: int) -> bytes:
    lines = "".join(f"X{index:06d},Student {index},{index % 30},yes,f\n" for index in range(rows))
    return ("student_id,name,units_approved,tuition_up_to_date,gender\n" + lines).encode()


def _mapped_upload(tenant, tmp_path: Path, content: bytes) -> ImportUpload:
    source = tmp_path / "students.csv"
    source.write_bytes(content)
    upload = import_upload_create_from_path(institution=tenant.institution, path=source, user=tenant.admin)
    import_upload_set_mapping(upload=upload, spec=import_preview(
        institution=tenant.institution, path=upload_path(upload), original_name=upload.original_name).mapping)
    return upload


def _fill(folder: Path) -> Path:
    """Take every free page of the disk: write a file until the disk refuses."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    return filler


def _run(tenant, upload: ImportUpload, *, commit: bool):
    job = import_upload_start(upload=upload, commit=commit, user=tenant.admin, dispatch=False)
    report = import_job_run(institution=tenant.institution, job=job)
    job.refresh_from_db()
    upload.refresh_from_db()
    return job, report


# 40 rows: the whole list fits the write buffer, so the disk refuses it as it is flushed at the end
# (for a commit, that has to be before its transaction commits); 1,500: while the rows are compared.
@pytest.mark.parametrize("rows", [40, 1500], ids=["refused-at-the-last-flush", "refused-mid-list"])
@pytest.mark.parametrize("commit", [True, False], ids=["commit", "validation"])
def test_a_disk_that_fills_under_an_import_job_says_so_writes_nothing_and_the_upload_imports_once_there_is_room(
    client, tenant_a, tenant_b, import_disk, tmp_path, rows, commit,
):
    upload = _mapped_upload(tenant_a, tmp_path, _new_students_csv(rows))
    before = database_state(tenant_a.institution, tenant_b.institution)
    filler = _fill(import_disk.path)

    job, report = _run(tenant_a, upload, commit=commit)
    assert report is None and job.status == JobStatus.FAILED
    assert "upload storage is full, so the import's list of changes was not saved" in job.error
    assert job.result == {"storage_error": {"code": "storage_full", "message": job.error, "details": []}}
    assert database_state(tenant_a.institution, tenant_b.institution) == before  # nothing written
    assert _files(import_disk.path) == sorted([filler, upload_path(upload)])  # no partial list; the file kept
    assert upload.status == ImportUploadStatus.UPLOADED

    client.force_login(tenant_a.admin)
    page = client.get(reverse("import-detail", args=["alpha", upload.pk])).content.decode()
    assert "upload storage is full" in page and "the file is kept" in page
    assert "The import stopped on an unexpected error" not in page
    client.force_login(tenant_b.admin)
    assert client.get(reverse("import-detail", args=["alpha", upload.pk])).status_code == 404

    filler.unlink()  # the operator makes room: the same upload validates and imports
    job, report = _run(tenant_a, upload, commit=False)
    assert job.status == JobStatus.SUCCEEDED and report.created == rows
    job, report = _run(tenant_a, upload, commit=True)
    assert job.status == JobStatus.SUCCEEDED and report.committed and report.created == rows
    assert import_changes_path(job).read_text().count("created") == rows
    assert Student.objects.for_institution(tenant_a.institution).filter(external_id__startswith="X").count() == rows
    assert not Student.objects.for_institution(tenant_b.institution).filter(external_id__startswith="X").exists()


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "validation"])
def test_a_media_folder_turned_read_only_under_an_import_job_says_so_and_the_file_imports_once_writable(
    tenant_a, tenant_b, tmp_path, settings, commit,
):
    disk = Tmpfs(tmp_path / "media", "1m")
    if os.geteuid() == 0:
        disk.mount()
    else:
        disk.path.mkdir()
    settings.MEDIA_ROOT = disk.path
    try:
        upload = _mapped_upload(tenant_a, tmp_path, _new_students_csv(200))
        before = database_state(tenant_a.institution, tenant_b.institution)
        if os.geteuid() == 0:
            disk.remount("ro")
        else:
            (disk.path / "imports" / str(tenant_a.institution.pk)).chmod(0o555)

        # The preview only reads the file: it works on a read-only folder.
        preview_job = import_upload_preview_start(upload=upload, user=tenant_a.admin)
        import_job_run(institution=tenant_a.institution, job=preview_job)
        assert Job.objects.for_institution(tenant_a.institution).get(pk=preview_job.pk).status == JobStatus.SUCCEEDED

        job, report = _run(tenant_a, upload, commit=commit)
        assert report is None and job.status == JobStatus.FAILED
        assert "media folder is read-only" in job.error and job.result["storage_error"]["code"] == "storage_read_only"
        assert database_state(tenant_a.institution, tenant_b.institution) == before
        assert _files(disk.path) == [upload_path(upload)]
        assert upload.status == ImportUploadStatus.UPLOADED

        if os.geteuid() == 0:
            disk.remount("rw")
        else:
            (disk.path / "imports" / str(tenant_a.institution.pk)).chmod(0o755)
        job, report = _run(tenant_a, upload, commit=True)
        assert job.status == JobStatus.SUCCEEDED and report.created == 200
        assert not upload_path(upload).exists()  # a committed upload's file goes, as always
    finally:
        if os.geteuid() == 0:
            disk.unmount()
