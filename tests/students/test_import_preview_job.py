"""The upload's preview is read by a job in the worker; the mapping page only shows what it stored.

The page shows "reading your file" (polled) while the job runs, the refusal the job found for a
hostile file, and otherwise the mapping drawn from the stored preview, without opening the file.
"""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook

from institutions.jobs import job_cancel
from institutions.models import Institution, Job, JobStatus
from students.importing.uploads import import_job_run, upload_path
from students.models import ImportUpload, ImportUploadStatus

from .import_helpers import GOOD_CSV, database_state, latest_upload
from .test_import_pages import form_data, upload

pytestmark = pytest.mark.django_db


def xlsx(rows) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload_without_running_the_job(client, slug, name, content) -> ImportUpload:
    """Post the upload form as a browser does while no worker has taken the preview job yet."""
    response = client.post(reverse("import-upload", args=[slug]), {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302
    institution = Institution.objects.get(slug=slug)
    return ImportUpload.objects.for_institution(institution).get(pk=int(response["Location"].split("/")[-3]))


def run_preview_job(upload_obj: ImportUpload):
    job = Job.objects.for_institution(upload_obj.institution).get(pk=upload_obj.preview_job_id)
    return import_job_run(institution=upload_obj.institution, job=job)


def test_the_mapping_page_shows_reading_your_file_until_the_worker_has_stored_the_preview(client, tenant_a):
    client.force_login(tenant_a.admin)
    upload_obj = upload_without_running_the_job(client, "alpha", "good.csv", GOOD_CSV.encode())
    url = reverse("import-mapping", args=["alpha", upload_obj.pk])
    assert upload_obj.preview == {} and upload_obj.preview_job.status == JobStatus.QUEUED

    page = client.get(url)
    text = page.content.decode()
    assert page.status_code == 200 and "Reading your file" in text and "waiting for a worker" in text
    assert f'hx-get="{url}"' in text and "vendor/htmx/htmx.min.js" in text  # polls, no inline script
    assert "form" not in page.context
    poll = client.get(url, headers={"HX-Request": "true"})
    assert poll.status_code == 200 and f'hx-get="{url}"' in poll.content.decode() and "HX-Refresh" not in poll
    # Validating before the preview exists is not possible: the page keeps showing the reading state.
    assert client.post(url, {})["Location"] == url
    assert upload_obj.validation_job_id is None

    run_preview_job(upload_obj)

    upload_obj.refresh_from_db()
    assert upload_obj.preview_job.status == JobStatus.SUCCEEDED
    assert upload_obj.preview["info"]["header"] == ["student_id", "name", "email", "units_approved",
                                                    "tuition_up_to_date", "gender", "outcome"]
    assert upload_obj.preview["rows"][1][:2] == ["N100", "Costa, Rui"]
    assert upload_obj.preview["mapping"]["columns"]["student_id"]["target"] == "external_id"
    assert upload_obj.preview["column_values"]["outcome"] == ["Enrolled", "Dropout"]
    poll = client.get(url, headers={"HX-Request": "true"})
    assert poll.status_code == 204 and poll["HX-Refresh"] == "true"  # the browser reloads the page
    page = client.get(url)
    assert page.status_code == 200 and "Costa, Rui" in page.content.decode()
    assert page.context["form"]["target_0"].value() == "external_id"


def test_the_mapping_page_answers_from_the_stored_preview_without_opening_the_file(
    client, tenant_a, django_capture_on_commit_callbacks
):
    content = xlsx([["student_id", "name", "outcome"], ["S001", "Ann Lee", "Graduate"], ["N7", "Bo", "Withdrawn"]])
    client.force_login(tenant_a.admin)
    upload(client, "alpha", "export.xlsx", content)
    upload_obj = latest_upload(tenant_a.institution)
    stored = upload_path(upload_obj)
    kept = stored.read_bytes()
    stored.unlink()  # the page could not read the workbook even if it tried

    url = reverse("import-mapping", args=["alpha", upload_obj.pk])
    page = client.get(url)
    text = page.content.decode()
    assert page.status_code == 200 and "XLSX" in text and "Ann Lee" in text and "Withdrawn" in text
    form = page.context["form"]
    assert [form["target_0"].value(), form["target_1"].value(), form["target_2"].value()] == [
        "external_id", "name", "outcome"]
    assert form.outcome_words == ["Graduate", "Withdrawn"]  # the outcome values offered for mapping
    # Validating needs the file itself: without it the page says so and starts no job.
    response = client.post(url, form_data(form))
    assert response["Location"] == reverse("import-upload", args=["alpha"])
    upload_obj.refresh_from_db()
    assert upload_obj.validation_job_id is None
    stored.write_bytes(kept)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form_data(form))
    upload_obj.refresh_from_db()
    assert upload_obj.status == ImportUploadStatus.VALIDATED, upload_obj.validation_job.result


@pytest.mark.parametrize("name,content,code,fragment", [
    ("nul.csv", b"student_id,name\nS1,A\x00nn\n", "binary_file", "NUL"),
    ("late-nul.csv", ("student_id,name\n" + "".join(f"S{i},Name {i}\n" for i in range(8000))).encode()
     + b"Z1,Ze\x00ro\n", "nul_byte", "line 8002"),
    ("archive.csv", b"\x1f\x8b\x08\x00rest", "binary_file", "gzip archive"),
    ("wide.csv", (",".join(f"c{i}" for i in range(600)) + "\n" + ",".join("1" * 600) + "\n").encode(),
     "too_many_columns", "The file has 600 columns"),
    ("big.xlsx", None, "xlsx_too_large", "save the sheet as CSV"),
])
def test_a_file_the_preview_job_refuses_shows_that_refusal_on_the_mapping_page_and_writes_nothing(
    client, tenants, settings, name, content, code, fragment
):
    a, b = tenants
    if content is None:  # a workbook over the uncompressed-size limit (lowered for the test)
        settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = 2_000
        content = xlsx([["student_id", "name"], *[[f"S{i}", "x" * 50] for i in range(200)]])
    before = database_state(a.institution, b.institution)
    client.force_login(a.admin)
    upload_obj = upload_without_running_the_job(client, "alpha", name, content)
    url = reverse("import-mapping", args=["alpha", upload_obj.pk])
    assert "Reading your file" in client.get(url).content.decode()

    assert run_preview_job(upload_obj) is None

    upload_obj.refresh_from_db()
    job = upload_obj.preview_job
    assert job.status == JobStatus.FAILED and job.result["file_error"]["code"] == code
    assert client.get(url, headers={"HX-Request": "true"})["HX-Refresh"] == "true"
    page = client.get(url).content.decode()
    assert "This file cannot be imported" in page and fragment in page
    assert "Reading your file" not in page and "Validate the whole file" not in page
    assert upload_obj.status == ImportUploadStatus.FAILED and not upload_path(upload_obj).exists()
    assert upload_obj.preview == {} and upload_obj.validation_job_id is None
    assert database_state(a.institution, b.institution) == before


def test_a_cancelled_preview_can_be_read_again(client, tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    client.force_login(a.admin)
    upload_obj = upload_without_running_the_job(client, "alpha", "good.csv", GOOD_CSV.encode())
    job_cancel(job=upload_obj.preview_job, user=a.admin)
    url = reverse("import-mapping", args=["alpha", upload_obj.pk])
    page = client.get(url).content.decode()
    assert "Reading the file did not finish" in page and "Read the file again" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import-read-again", args=["alpha", upload_obj.pk]))
    assert response["Location"] == url
    upload_obj.refresh_from_db()
    assert upload_obj.preview_job.status == JobStatus.SUCCEEDED and upload_obj.preview["info"]["format"] == "csv"
    assert client.get(url).context["form"]["target_0"].value() == "external_id"
    # Another institution's admin can neither read it again nor see its preview.
    client.force_login(b.admin)
    for slug in ("alpha", "beta"):
        assert client.post(reverse("import-read-again", args=[slug, upload_obj.pk])).status_code == 404
        assert client.get(reverse("import-mapping", args=[slug, upload_obj.pk])).status_code == 404
    assert Job.objects.for_institution(a.institution).count() == 2


def test_reading_again_is_refused_while_the_preview_job_is_still_queued(client, tenant_a):
    client.force_login(tenant_a.admin)
    upload_obj = upload_without_running_the_job(client, "alpha", "good.csv", GOOD_CSV.encode())
    response = client.post(reverse("import-read-again", args=["alpha", upload_obj.pk]), follow=True)
    assert "cannot be read again" in response.content.decode()
    assert Job.objects.for_institution(tenant_a.institution).count() == 1
