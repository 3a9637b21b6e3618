"""Large institutions (issue 23, item 1): the page keeps IMPORT_MAX_FILE_BYTES, the API and the CLI
take files up to IMPORT_MAX_BULK_FILE_BYTES (the limit follows the upload into its jobs), and the
API's chunked, resumable upload ends in an ordinary upload, previewed as the page's."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from institutions.api_keys import api_key_create
from institutions.models import Job, JobStatus
from students.importing import ImportFileError
from students.importing.uploads import import_job_run, import_upload_start
from students.models import ImportChannel, ImportUpload, ImportUploadSession, ImportUploadStatus, Student
from students.tasks import expire_institution_import_uploads

from .import_helpers import GOOD_CSV, database_state, latest_upload, write_file
from .test_import_api import post_file
from .test_import_pages import upload as page_upload

pytestmark = pytest.mark.django_db
CSV = GOOD_CSV.encode()  # 179 bytes
CHUNK = "application/offset+octet-stream"


@pytest.fixture
def limits(settings, tmp_path):
    """Small limits instead of big files: the page takes 100 bytes, the API and the CLI 100,000."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_MAX_FILE_BYTES = 100
    settings.IMPORT_MAX_BULK_FILE_BYTES = 100_000
    settings.IMPORT_UPLOAD_CHUNK_MAX_BYTES = 64
    return settings


def _key(tenant, scopes=("imports:write",)):
    return api_key_create(institution=tenant.institution, name="SIS", scopes=list(scopes))[1]


def _client(api_client, tenant, scopes=("imports:write",)):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_key(tenant, scopes)}")
    return api_client


def _sessions(slug):
    return reverse("api-import-upload-sessions", args=[slug])


def _create(client, slug="alpha", content=CSV, **extra):
    return client.post(_sessions(slug), {"filename": "big.csv", "size": len(content), **extra}, format="json")


def _send(client, url, offset, body, content_type=CHUNK):
    return client.generic("PATCH", url, body, content_type=content_type, HTTP_UPLOAD_OFFSET=str(offset))


def _complete(client, url, capture):
    with capture(execute=True):
        return client.post(url + "complete/")


def _upload_in_chunks(client, capture, content=CSV, size=60, **extra):
    created = _create(client, content=content, **extra)
    assert created.status_code == 201, created.content
    url = created.json()["url"]
    for offset in range(0, len(content), size):
        response = _send(client, url, offset, content[offset:offset + size])
        assert response.status_code == 200, response.content
    return url, _complete(client, url, capture)


# --- two limits ----------------------------------------------------------------------------------

def test_the_page_still_refuses_a_file_beyond_its_limit(client, tenant_a, limits):
    client.force_login(tenant_a.admin)
    before = database_state(tenant_a.institution)
    response = page_upload(client, "alpha", "big.csv", CSV)
    assert response.status_code == 200 and "largest accepted file is" in response.content.decode()
    assert "IMPORT_MAX_FILE_BYTES" in response.content.decode()
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()
    assert database_state(tenant_a.institution) == before


def test_the_api_takes_a_file_between_the_two_limits_and_its_job_checks_the_bulk_limit(
        api_client, tenant_a, limits, django_capture_on_commit_callbacks):
    client = _client(api_client, tenant_a)
    response = post_file(client, "alpha", "big.csv", CSV, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    upload = ImportUpload.objects.for_institution(tenant_a.institution).get(pk=response.json()["upload_id"])
    assert upload.channel == ImportChannel.API and upload.size == len(CSV) > limits.IMPORT_MAX_FILE_BYTES
    job = Job.objects.for_institution(tenant_a.institution).get(pk=response.json()["job_id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert Student.objects.for_institution(tenant_a.institution).get(external_id="N100").name == "Costa, Rui"


def test_the_api_refuses_a_file_beyond_the_bulk_limit(api_client, tenant_a, limits,
                                                      django_capture_on_commit_callbacks):
    limits.IMPORT_MAX_BULK_FILE_BYTES = 150
    response = post_file(_client(api_client, tenant_a), "alpha", "big.csv", CSV, django_capture_on_commit_callbacks)
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"
    assert "IMPORT_MAX_BULK_FILE_BYTES" in response.json()["message"]
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()


def test_the_cli_takes_a_file_between_the_two_limits_and_says_its_limit_in_help(tenant_a, tmp_path, limits):
    path = write_file(tmp_path, "big.csv", CSV)
    out = StringIO()
    call_command("import_students", "alpha", str(path), "--no-progress", stdout=out)
    assert "Imported" in out.getvalue() or "created" in out.getvalue()
    assert latest_upload(tenant_a.institution).channel == ImportChannel.CLI
    assert Student.objects.for_institution(tenant_a.institution).filter(external_id__in=["S001", "N100"]).count() == 2

    limits.IMPORT_MAX_BULK_FILE_BYTES = 150
    with pytest.raises(CommandError, match="file_too_large"):
        call_command("import_students", "alpha", str(path), "--no-progress", stdout=StringIO())

    from students.management.commands.import_students import Command
    parser = Command().create_parser("manage.py", "import_students")
    assert "IMPORT_MAX_BULK_FILE_BYTES" in parser.format_help()


def test_the_limit_follows_the_upload_into_its_job(tenant_a, limits, tmp_path):
    """A page upload whose file is (now) beyond the page's limit is refused by its job; the same
    size on the API channel passes: the job checks the channel recorded on the upload."""
    institution = tenant_a.institution
    for channel, refused in ((ImportChannel.PAGE, True), (ImportChannel.API, False)):
        stored = f"imports/{institution.pk}/{channel}.csv"
        (Path(limits.MEDIA_ROOT) / stored).parent.mkdir(parents=True, exist_ok=True)
        (Path(limits.MEDIA_ROOT) / stored).write_bytes(CSV)
        upload = ImportUpload.objects.for_institution(institution).create(
            original_name="big.csv", stored_name=stored, size=len(CSV), channel=channel)
        job = import_upload_start(upload=upload, commit=False, dispatch=False)
        import_job_run(institution=institution, job=job)
        job.refresh_from_db()
        if refused:
            assert job.status == JobStatus.FAILED and job.result["file_error"]["code"] == "file_too_large"
        else:
            assert job.status == JobStatus.SUCCEEDED, job.error


# --- the chunked upload --------------------------------------------------------------------------

def test_a_chunked_upload_is_previewed_as_the_same_file_uploaded_whole_and_imports_nothing_by_itself(
        api_client, client, tenants, settings, tmp_path, django_capture_on_commit_callbacks):
    a, b = tenants
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_UPLOAD_CHUNK_MAX_BYTES = 64
    before = database_state(a.institution, b.institution)
    api = _client(api_client, a)
    url, done = _upload_in_chunks(api, django_capture_on_commit_callbacks, sha256=hashlib.sha256(CSV).hexdigest())
    assert done.status_code == 202, done.content
    body = done.json()
    chunked = ImportUpload.objects.for_institution(a.institution).get(pk=body["upload_id"])
    assert chunked.channel == ImportChannel.API and chunked.size == len(CSV)
    assert (tmp_path / chunked.stored_name).read_bytes() == CSV
    assert body["import_url"].endswith(reverse("import-detail", args=["alpha", chunked.pk]))
    assert Job.objects.for_institution(a.institution).get(pk=body["job_id"]).status == JobStatus.SUCCEEDED
    assert chunked.status == ImportUploadStatus.UPLOADED and chunked.validation_job is None
    assert database_state(a.institution, b.institution) == before  # nothing imported without the page's steps
    assert api.get(url).json()["completed"] is True

    client.force_login(a.admin)
    page_upload(client, "alpha", "big.csv", CSV)
    whole = latest_upload(a.institution)
    assert whole.pk != chunked.pk and whole.channel == ImportChannel.PAGE
    chunked.refresh_from_db()
    assert chunked.preview and chunked.preview == whole.preview
    assert client.get(body["import_url"]).status_code in (200, 302)


def test_chunks_resume_from_the_offset_get_tells_and_a_wrong_offset_is_409(
        api_client, tenant_a, limits, django_capture_on_commit_callbacks):
    api = _client(api_client, tenant_a)
    created = _create(api)
    assert created.status_code == 201 and created.json()["offset"] == 0 and created["Upload-Offset"] == "0"
    assert created["Location"] == created.json()["url"]
    url = created.json()["url"]
    assert _send(api, url, 0, CSV[:50]).json()["offset"] == 50
    assert _send(api, url, 50, CSV[50:100], content_type="application/octet-stream").json()["offset"] == 100

    again = _send(api, url, 50, CSV[50:100])  # a client that lost the answer sends the chunk again
    assert again.status_code == 409 and again.json()["code"] == "offset_mismatch"
    assert again.json()["offset"] == 100 and again["Upload-Offset"] == "100"
    early = api.post(url + "complete/")
    assert early.status_code == 409 and early.json()["code"] == "upload_incomplete" and early.json()["offset"] == 100

    offset = api.get(url).json()["offset"]  # resume where the server is
    assert offset == 100
    assert _send(api, url, offset, CSV[offset:160]).json()["offset"] == 160
    assert _send(api, url, 160, CSV[160:]).json()["offset"] == len(CSV)
    done = _complete(api, url, django_capture_on_commit_callbacks)
    assert done.status_code == 202
    upload = ImportUpload.objects.for_institution(tenant_a.institution).get(pk=done.json()["upload_id"])
    assert (Path(limits.MEDIA_ROOT) / upload.stored_name).read_bytes() == CSV
    after = _send(api, url, len(CSV), b"x")
    assert after.status_code == 409 and after.json()["code"] == "upload_completed"
    assert _complete(api, url, django_capture_on_commit_callbacks).json()["upload_id"] == upload.pk  # idempotent


@pytest.mark.parametrize("case", ["too_big_chunk", "beyond_size", "no_offset", "bad_offset", "empty", "json_body"])
def test_bad_chunks_are_refused_with_a_code_and_keep_the_offset(api_client, tenant_a, limits, case):
    api = _client(api_client, tenant_a)
    url = _create(api).json()["url"]
    _send(api, url, 0, CSV[:40])
    if case == "too_big_chunk":
        response = _send(api, url, 40, CSV[40:40 + 65])
        assert response.status_code == 413 and response.json()["code"] == "chunk_too_large"
    elif case == "beyond_size":
        limits.IMPORT_UPLOAD_CHUNK_MAX_BYTES = 1000
        response = _send(api, url, 40, CSV[40:] + b"more")
        assert response.status_code == 400 and response.json()["code"] == "chunk_beyond_size"
    elif case == "no_offset":
        response = api.generic("PATCH", url, CSV[40:60], content_type=CHUNK)
        assert response.status_code == 400 and response.json()["code"] == "invalid"
    elif case == "bad_offset":
        response = _send(api, url, "-1", CSV[40:60])
        assert response.status_code == 400 and "Upload-Offset" in response.json()["errors"]
    elif case == "empty":
        response = _send(api, url, 40, b"")
        assert response.status_code == 400 and response.json()["code"] == "empty_chunk"
    else:
        response = _send(api, url, 40, b'{"a": 1}', content_type="application/json")
        assert response.status_code == 415
    assert api.get(url).json()["offset"] == 40


def test_a_session_beyond_the_bulk_limit_or_empty_is_refused(api_client, tenant_a, limits):
    api = _client(api_client, tenant_a)
    too_big = api.post(_sessions("alpha"), {"filename": "x.csv", "size": 100_001}, format="json")
    assert too_big.status_code == 413 and too_big.json()["code"] == "file_too_large"
    assert api.post(_sessions("alpha"), {"filename": "x.csv", "size": 0}, format="json").status_code == 400
    bad_sha = api.post(_sessions("alpha"), {"filename": "x.csv", "size": 10, "sha256": "zz"}, format="json")
    assert bad_sha.status_code == 400 and "sha256" in bad_sha.json()["errors"]
    assert not ImportUploadSession.objects.for_institution(tenant_a.institution).exists()


def test_a_checksum_mismatch_at_completion_is_refused_imports_nothing_and_starts_over(
        api_client, tenants, limits, django_capture_on_commit_callbacks):
    a, b = tenants
    before = database_state(a.institution, b.institution)
    api = _client(api_client, a)
    url, done = _upload_in_chunks(api, django_capture_on_commit_callbacks, sha256=hashlib.sha256(b"other").hexdigest())
    assert done.status_code == 400 and done.json()["code"] == "checksum_mismatch"
    assert api.get(url).json()["offset"] == 0 and api.get(url).json()["completed"] is False
    assert not ImportUpload.objects.for_institution(a.institution).exists()
    assert database_state(a.institution, b.institution) == before


def test_a_size_mismatch_at_completion_is_refused_and_imports_nothing(
        api_client, tenant_a, limits, django_capture_on_commit_callbacks):
    api = _client(api_client, tenant_a)
    url = _create(api).json()["url"]
    _send(api, url, 0, CSV[:60])
    _send(api, url, 60, CSV[60:120])
    assert _send(api, url, 120, CSV[120:]).json()["offset"] == len(CSV)
    session = ImportUploadSession.all_institutions.get()
    (Path(limits.MEDIA_ROOT) / session.stored_name).write_bytes(CSV[:100])  # damaged behind the server's back
    done = _complete(api, url, django_capture_on_commit_callbacks)
    assert done.status_code == 400 and done.json()["code"] == "size_mismatch"
    assert api.get(url).json()["offset"] == 0
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()


def test_the_session_file_is_moved_so_the_upload_owns_it(api_client, tenant_a, limits,
                                                         django_capture_on_commit_callbacks):
    api = _client(api_client, tenant_a)
    _url, done = _upload_in_chunks(api, django_capture_on_commit_callbacks)
    session = ImportUploadSession.all_institutions.get()
    assert not (Path(limits.MEDIA_ROOT) / session.stored_name).exists()
    assert session.upload_id == done.json()["upload_id"]


def test_every_new_endpoint_is_404_for_another_institutions_key_and_403_without_imports_write(
        api_client, tenants, limits, django_capture_on_commit_callbacks):
    a, b = tenants
    url = _create(_client(api_client, a)).json()["url"]
    _send(api_client, url, 0, CSV[:40])
    other = api_client.__class__()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {_key(b)}")
    same_path_b = url.replace("/alpha/", "/beta/")
    for target in (url, same_path_b):
        assert other.get(target).status_code == 404
        assert _send(other, target, 40, CSV[40:60]).status_code == 404
        assert other.post(target + "complete/").status_code == 404
        assert other.delete(target).status_code == 404
    assert other.post(_sessions("alpha"), {"filename": "x.csv", "size": 10}, format="json").status_code == 404
    reader = api_client.__class__()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {_key(a, scopes=('imports:read',))}")
    assert reader.post(_sessions("alpha"), {"filename": "x.csv", "size": 10}, format="json").status_code == 403
    assert _send(reader, url, 40, CSV[40:60]).status_code == 403
    assert api_client.get(url).json()["offset"] == 40  # untouched
    assert not ImportUploadSession.objects.for_institution(b.institution).exists()


def test_an_abandoned_session_can_be_deleted(api_client, tenant_a, limits):
    api = _client(api_client, tenant_a)
    url = _create(api).json()["url"]
    _send(api, url, 0, CSV[:40])
    path = Path(limits.MEDIA_ROOT) / ImportUploadSession.all_institutions.get().stored_name
    assert path.stat().st_size == 40
    assert api.delete(url).status_code == 204
    assert not path.exists() and api.get(url).status_code == 404


def test_abandoned_sessions_expire_with_the_upload_retention_task_in_their_institution_only(
        api_client, tenants, limits, django_capture_on_commit_callbacks):
    a, b = tenants
    paths = {}
    for tenant in (a, b):
        api = api_client.__class__()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {_key(tenant)}")
        response = api.post(_sessions(tenant.institution.slug), {"filename": "x.csv", "size": len(CSV)},
                            format="json")
        _send(api, response.json()["url"], 0, CSV[:40])
        session = ImportUploadSession.all_institutions.get(pk=response.json()["id"])
        paths[tenant.institution.slug] = Path(limits.MEDIA_ROOT) / session.stored_name
    fresh = _create(_client(api_client, a)).json()["id"]
    old = timezone.now() - timedelta(days=limits.IMPORT_UPLOAD_RETENTION_DAYS + 1)
    ImportUploadSession.all_institutions.exclude(pk=fresh).update(updated_at=old)

    counts = expire_institution_import_uploads.delay(institution_id=a.institution.pk).get()

    assert counts["sessions"] == 1
    assert not paths["alpha"].exists() and paths["beta"].exists()
    assert set(ImportUploadSession.all_institutions.values_list("institution__slug", flat=True)) == {"alpha", "beta"}
    assert ImportUploadSession.all_institutions.filter(pk=fresh).exists()


def test_the_service_refuses_a_file_beyond_the_bulk_limit_at_completion(tenant_a, limits):
    from students.importing.chunked import upload_session_append, upload_session_complete, upload_session_create

    session = upload_session_create(institution=tenant_a.institution, filename="a.csv", size=len(CSV))
    from io import BytesIO
    upload_session_append(session=session, offset=0, stream=BytesIO(CSV), length=len(CSV))
    limits.IMPORT_MAX_BULK_FILE_BYTES = 150  # lowered by the operator meanwhile
    with pytest.raises(ImportFileError) as caught:
        upload_session_complete(session=session)
    assert caught.value.code == "file_too_large"
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()


def test_a_chunk_cut_short_keeps_nothing_of_it(tenant_a, limits):
    from io import BytesIO

    from students.importing.chunked import upload_session_append, upload_session_create

    session = upload_session_create(institution=tenant_a.institution, filename="a.csv", size=len(CSV))
    with pytest.raises(ImportFileError) as caught:
        upload_session_append(session=session, offset=0, stream=BytesIO(CSV[:30]), length=60)
    assert caught.value.code == "incomplete_chunk"
    session.refresh_from_db()
    assert session.offset == 0
    assert (Path(limits.MEDIA_ROOT) / session.stored_name).stat().st_size == 0


def test_a_body_the_page_refuses_unread_is_taken_by_the_api(client, api_client, tenant_a, limits,
                                                             django_capture_on_commit_callbacks):
    """The body-size check before anything is read: the page's limit on the page, the bulk one on
    the API's file import (both plus room for the form fields)."""
    limits.IMPORT_MAX_FILE_BYTES = 1000
    limits.IMPORT_MAX_BULK_FILE_BYTES = 3 * 1024 * 1024
    header, _ = GOOD_CSV.split("\r\n", 1)
    rows = "".join(f"X{number:06d},Name {number},x{number}@example.edu,3,no,m,Enrolled\r\n"
                   for number in range(40_000))
    content = f"{header}\r\n{rows}".encode()
    assert 1024 * 1024 + 1000 < len(content) < limits.IMPORT_MAX_BULK_FILE_BYTES
    client.force_login(tenant_a.admin)
    page = client.post(reverse("import-upload", args=["alpha"]),
                       {"file": SimpleUploadedFile("big.csv", content)}, follow=True)
    assert page.redirect_chain[0][1] == 302 and "the largest accepted file is" in page.content.decode()
    assert "manage.py import_students" in page.content.decode()
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()

    response = post_file(_client(api_client, tenant_a), "alpha", "big.csv", content,
                         django_capture_on_commit_callbacks, dry_run="true")
    assert response.status_code == 202, response.content
    job = Job.objects.for_institution(tenant_a.institution).get(pk=response.json()["job_id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["summary"].startswith("Ready to import: 40000 created")
