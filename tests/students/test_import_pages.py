"""The upload -> preview/mapping -> validation report -> commit pages, as an administrator sees them."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from institutions.models import Job, JobKind, JobStatus
from students.importing.uploads import upload_path
from students.models import FeatureDefinition, ImportUpload, ImportUploadStatus, Student

from .import_helpers import GOOD_CSV, UCI_FILE, database_state, latest_upload

pytestmark = pytest.mark.django_db


def form_data(form, **overrides) -> dict:
    """What a browser would post for the form as shown (its initial values), plus overrides."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value == []:
            continue
        data[name] = value
    data.update(overrides)
    return data


def upload(client, slug, name, content: bytes):
    """Post the upload form; its preview job runs (eagerly, in tests) when the request's transaction commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(reverse("import-upload", args=[slug]), {"file": SimpleUploadedFile(name, content)})


def validate(client, institution, upload_obj, django_capture_on_commit_callbacks, **overrides):
    url = reverse("import-mapping", args=[institution.slug, upload_obj.pk])
    form = client.get(url).context["form"]
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, form_data(form, **overrides))


def commit(client, institution, upload_obj, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("import-commit", args=[institution.slug, upload_obj.pk]), data)


def import_through_pages(client, tenant, name, content, capture, **overrides):
    client.force_login(tenant.admin)
    response = upload(client, tenant.institution.slug, name, content)
    assert response.status_code == 302, response.content[:500]
    upload_obj = latest_upload(tenant.institution)
    response = validate(client, tenant.institution, upload_obj, capture, **overrides)
    assert response.status_code == 302
    upload_obj.refresh_from_db()
    assert upload_obj.status == ImportUploadStatus.VALIDATED, upload_obj.validation_job.result
    commit(client, tenant.institution, upload_obj, capture)
    upload_obj.refresh_from_db()
    return upload_obj


def test_uci_file_goes_through_upload_preview_mapping_report_and_commit(client, tenant_a,
                                                                       django_capture_on_commit_callbacks):
    institution = tenant_a.institution
    FeatureDefinition.objects.for_institution(institution).filter(key="gender").delete()
    Student.objects.for_institution(institution).delete()  # numbered rows: only a first import
    client.force_login(tenant_a.admin)
    response = upload(client, institution.slug, "uci.csv", UCI_FILE.read_bytes())
    upload_obj = latest_upload(institution)
    assert response["Location"] == reverse("import-mapping", args=[institution.slug, upload_obj.pk])

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"Nacionality" in page.content and b"delimiter \xe2\x80\x9csemicolon\xe2\x80\x9d" in page.content
    form = page.context["form"]
    assert form["id_row_prefix"].value() == "UCI"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(response["Location"], form_data(form))
    detail_url = reverse("import-detail", args=[institution.slug, upload_obj.pk])
    assert response["Location"] == detail_url
    detail = client.get(detail_url)
    assert "Ready to import: 4424 created, 0 updated, 0 unchanged" in detail.content.decode()
    assert not Student.objects.for_institution(institution).filter(external_id__startswith="UCI-").exists()

    commit(client, institution, upload_obj, django_capture_on_commit_callbacks)

    upload_obj.refresh_from_db()
    assert upload_obj.status == ImportUploadStatus.COMMITTED
    assert upload_obj.commit_job.kind == JobKind.IMPORT and upload_obj.commit_job.status == JobStatus.SUCCEEDED
    assert upload_obj.commit_job.counts["created"] == 4424
    assert Student.objects.for_institution(institution).filter(external_id__startswith="UCI-").count() == 4424
    assert "Imported: 4424 created" in client.get(detail_url).content.decode()
    assert not upload_path(upload_obj).exists()  # the file is kept only until the import job ends


def test_mapping_is_remembered_for_the_next_upload(client, tenant_a, django_capture_on_commit_callbacks):
    content = b"matricula;nota\r\nN1;3\r\n"
    client.force_login(tenant_a.admin)
    upload(client, tenant_a.institution.slug, "one.csv", content)
    first = latest_upload(tenant_a.institution)
    form = client.get(reverse("import-mapping", args=[tenant_a.institution.slug, first.pk])).context["form"]
    assert form["target_1"].value() == "new_feature"
    validate(client, tenant_a.institution, first, django_capture_on_commit_callbacks,
             target_1="feature:units_approved")

    upload(client, tenant_a.institution.slug, "two.csv", content)
    second = latest_upload(tenant_a.institution)
    form = client.get(reverse("import-mapping", args=[tenant_a.institution.slug, second.pk])).context["form"]

    assert second.pk != first.pk
    assert form["target_0"].value() == "external_id"
    assert form["target_1"].value() == "feature:units_approved"


def test_invalid_rows_are_shown_highlighted_and_downloadable_and_nothing_is_written(
    client, tenants, django_capture_on_commit_callbacks
):
    a, b = tenants
    before = database_state(a.institution, b.institution)
    content = GOOD_CSV.replace("S001,Ann Lee,ann@example.edu,12", "S001,Ann Lee,ann@example.edu,45").encode()
    client.force_login(a.admin)
    upload(client, a.institution.slug, "bad.csv", content)
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    upload_obj.refresh_from_db()
    assert upload_obj.status == ImportUploadStatus.INVALID

    page = client.get(reverse("import-detail", args=[a.institution.slug, upload_obj.pk])).content.decode()
    assert 'class="table-danger" aria-invalid="true"' in page
    assert "45 is outside the valid range 0 to 30" in page
    assert "nothing was imported" in page
    download = client.get(reverse("import-errors-csv", args=[a.institution.slug, upload_obj.pk]))
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows == [["row", "column", "value", "reason"],
                    ["2", "units_approved", "45", "45 is outside the valid range 0 to 30"]]
    # Committing anyway is refused without the explicit choice.
    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks, valid_rows_only="1")
    assert database_state(a.institution, b.institution) == before

    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks, valid_rows_only="1",
           confirm_skip="1")
    upload_obj.refresh_from_db()
    assert upload_obj.status == ImportUploadStatus.COMMITTED
    assert Student.objects.for_institution(a.institution).filter(external_id="N100").exists()
    assert Student.objects.for_institution(a.institution).get(external_id="S001").name != "Ann Lee"


def test_a_file_refused_as_a_whole_says_why_on_the_page(client, tenant_a, django_capture_on_commit_callbacks):
    client.force_login(tenant_a.admin)
    upload(client, tenant_a.institution.slug, "dup.csv", b"student_id,name\nN1,A\nN1,B\n")
    upload_obj = latest_upload(tenant_a.institution)
    validate(client, tenant_a.institution, upload_obj, django_capture_on_commit_callbacks)
    page = client.get(reverse("import-detail", args=[tenant_a.institution.slug, upload_obj.pk])).content.decode()
    assert "The file cannot be imported." in page and "appear more than once" in page


def test_binary_upload_is_refused_by_the_preview_job_and_the_mapping_page_says_why(client, tenants):
    a, b = tenants
    before = database_state(a.institution, b.institution)
    client.force_login(a.admin)
    response = upload(client, a.institution.slug, "students.csv", b"\x1f\x8b\x08\x00rest")
    page = client.get(response["Location"])
    assert page.status_code == 200 and "This is a gzip archive" in page.content.decode()
    upload_obj = latest_upload(a.institution)
    assert upload_obj.status == ImportUploadStatus.FAILED and not upload_path(upload_obj).exists()
    assert upload_obj.preview_job.result["file_error"]["code"] == "binary_file"
    assert database_state(a.institution, b.institution) == before


def test_oversize_upload_is_refused_on_the_form(client, tenant_a, settings):
    settings.IMPORT_MAX_FILE_BYTES = 10
    client.force_login(tenant_a.admin)
    response = upload(client, tenant_a.institution.slug, "big.csv", GOOD_CSV.encode())
    assert response.status_code == 200 and "largest accepted file" in response.content.decode()
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_administrators_can_import(client, tenant_a, role):
    client.force_login(getattr(tenant_a, role))
    assert client.get(reverse("import-upload", args=[tenant_a.institution.slug])).status_code == 403
    assert upload(client, tenant_a.institution.slug, "x.csv", GOOD_CSV.encode()).status_code == 403


@pytest.mark.parametrize("name,method", [
    ("import-detail", "get"), ("import-mapping", "get"), ("import-mapping", "post"), ("import-commit", "post"),
    ("import-discard", "post"), ("import-errors-csv", "get"), ("import-read-again", "post"),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_admin_of_another_institution_gets_404_on_its_uploads(client, tenants, name, method, htmx):
    a, b = tenants
    client.force_login(b.admin)
    upload(client, b.institution.slug, "b.csv", GOOD_CSV.encode())
    b_upload = latest_upload(b.institution)
    jobs = list(Job.objects.for_institution(b.institution).values_list("pk", "status"))
    assert jobs == [(b_upload.preview_job_id, JobStatus.SUCCEEDED)]  # its preview, read in the worker
    client.force_login(a.admin)
    headers = {"HX-Request": "true"} if htmx else {}  # the reading state's poll
    through_own_url = getattr(client, method)(reverse(name, args=[a.institution.slug, b_upload.pk]), headers=headers)
    through_its_url = getattr(client, method)(reverse(name, args=[b.institution.slug, b_upload.pk]), headers=headers)
    assert through_own_url.status_code == 404 and through_its_url.status_code == 404
    assert "HX-Refresh" not in through_own_url and "HX-Refresh" not in through_its_url
    b_upload.refresh_from_db()
    assert b_upload.status == ImportUploadStatus.UPLOADED and b_upload.preview["info"]["header"][0] == "student_id"
    assert list(Job.objects.for_institution(b.institution).values_list("pk", "status")) == jobs


def test_upload_list_shows_only_own_institutions_uploads(client, tenants):
    a, b = tenants
    client.force_login(b.admin)
    upload(client, b.institution.slug, "secret-b.csv", GOOD_CSV.encode())
    client.force_login(a.admin)
    upload(client, a.institution.slug, "mine-a.csv", GOOD_CSV.encode())
    page = client.get(reverse("import-upload", args=[a.institution.slug])).content.decode()
    assert "mine-a.csv" in page and "secret-b.csv" not in page


def test_import_committed_is_sent_once_after_a_commit_and_never_for_validation_or_errors(
    client, tenant_a, django_capture_on_commit_callbacks
):
    from students.signals import import_committed

    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    import_committed.connect(receiver)
    try:
        client.force_login(tenant_a.admin)
        upload(client, tenant_a.institution.slug, "bad.csv", GOOD_CSV.replace(",12,", ",99,").encode())
        validate(client, tenant_a.institution, latest_upload(tenant_a.institution), django_capture_on_commit_callbacks)
        assert received == []
        upload_obj = import_through_pages(client, tenant_a, "good.csv", GOOD_CSV.encode(),
                                          django_capture_on_commit_callbacks)
    finally:
        import_committed.disconnect(receiver)
    assert received == [{"signal": import_committed, "institution_id": tenant_a.institution.pk,
                         "job_id": upload_obj.commit_job_id}]
