"""Disk faults on upload (issue 17, item 7); the clean-up of uploads never committed is tested in
tests/students/test_upload_retention.py.

The faults are real ones: MEDIA_ROOT on a tmpfs of 64 KB (disk full), on a read-only tmpfs or a
read-only folder, or under a regular file (no folder can be made). Mounting needs root; where
neither a mount nor a permission can make a folder unwritable the test is skipped, never faked.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from students.models import ImportUpload
from tests.students.import_helpers import GOOD_CSV

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


@pytest.fixture
def small_disk(tmp_path, settings):
    disk = Tmpfs(tmp_path / "media", "64k")
    disk.mount()
    settings.MEDIA_ROOT = disk.path
    yield disk
    disk.unmount()


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
