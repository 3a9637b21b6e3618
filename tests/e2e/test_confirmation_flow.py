"""The confirmation pages in a real browser: an import that changes students shows each old → new
value before anything is written, and a model that failed the gate goes live only with a ticked
confirmation and a written reason, which its page then shows."""

from __future__ import annotations

import re

import pytest

from institutions.scoping import institution_scope
from predictions.models import ModelStatus, ModelVersion
from students.models import ImportUpload, Student
from tests.predictions.conftest import fast_settings, trained_a  # noqa: F401 - fixture

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_admin_sees_every_old_and_new_value_before_an_import_changes_students_then_the_result(
    live_server, page, screenshot, tmp_path, tenants,
):
    a, b = tenants
    stored = {s.external_id: s.features["units_approved"]
              for s in Student.objects.for_institution(a.institution).filter(external_id__in=["S001", "S002"])}
    assert stored == {"S001": 1.0, "S002": 2.0}
    b_before = sorted(Student.objects.for_institution(b.institution).values_list("external_id", "features"))
    path = tmp_path / "corrections.csv"
    path.write_text("student_id,units_approved\nS001,12\nS002,25\n", encoding="utf-8")

    log_in(page, live_server, "alpha-admin")
    page.goto(f"{live_server.url}/i/alpha/imports/")
    page.get_by_label("CSV or Excel (.xlsx) file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and preview").click()
    # The preview job has read the file (its header and first rows are shown); nothing changed yet.
    page.get_by_role("heading", name="Preview and column mapping").wait_for()
    assert page.get_by_label("Column “student_id”").input_value() == "external_id"
    assert page.get_by_label("Column “units_approved”").input_value() == "feature:units_approved"
    page.get_by_role("button", name="Validate the whole file").click()

    page.get_by_role("heading", name="What the import would change").wait_for()
    assert "Ready to import: 0 created, 2 updated, 0 unchanged" in page.locator("#import-status").inner_text()
    changes = page.locator("table", has=page.get_by_role("columnheader", name="Stored value"))
    lines = [[cell.strip() for cell in row.locator("td").all_inner_texts()]
             for row in changes.locator("tbody tr").all()]
    by_student = {line[1]: line for line in lines}
    assert set(by_student) == {"S001", "S002"}
    for external_id, new in (("S001", "12"), ("S002", "25")):
        _row, _id, action, field, old, shown_new = by_student[external_id]
        assert action == "updated" and "units_approved" in field
        assert float(old) == stored[external_id] and float(shown_new) == float(new)
    screenshot(page, "import-change-preview")
    # Nothing is written before the commit.
    assert {s.external_id: s.features["units_approved"] for s in Student.objects.for_institution(a.institution)
            .filter(external_id__in=["S001", "S002"])} == stored

    page.get_by_role("button", name=re.compile(r"Import 2 rows")).click()
    status = page.locator("#import-status")
    status.get_by_text("Imported: 0 created, 2 updated").wait_for()
    assert page.get_by_role("heading", name="What the import changed").count() == 1
    assert {s.external_id: s.features["units_approved"] for s in Student.objects.for_institution(a.institution)
            .filter(external_id__in=["S001", "S002"])} == {"S001": 12.0, "S002": 25.0}
    upload = ImportUpload.objects.for_institution(a.institution).get()
    assert upload.preview_job.is_finished and upload.commit_job.counts["updated"] == 2
    # Institution B's students with the same ids are untouched.
    assert sorted(Student.objects.for_institution(b.institution).values_list("external_id", "features")) == b_before


def test_promoting_a_model_that_failed_the_gate_asks_for_confirmation_and_a_reason_shown_afterwards(
    live_server, page, screenshot, trained_a,  # noqa: F811 - the fixture imported above
):
    from predictions.services.training import model_version_train

    a = trained_a
    fast_settings(a.institution, min_training_size=1_000_000)  # more students than the institution has
    with institution_scope(a.institution):
        candidate = model_version_train(institution=a.institution)
    assert candidate.status == ModelStatus.CANDIDATE and candidate.gate_passed is False
    reason = "Reviewed with the registrar: the minimum is set for a far larger university than ours."

    log_in(page, live_server, "alpha-admin")
    page.goto(f"{live_server.url}/i/alpha/models/v{candidate.number}/")
    page.get_by_role("link", name=re.compile(rf"Promote v{candidate.number} despite the failed gate")).click()
    page.get_by_role("heading", name=re.compile(rf"Make model v{candidate.number} live\?")).wait_for()
    assert "(minimum 1000000)" in page.content() and "not passed" in page.content()

    # Without the confirmation and the reason nothing happens: the page says what is missing.
    page.get_by_label("Why it should go live despite the failed checks").fill("ok")
    page.get_by_role("button", name=f"Promote v{candidate.number} anyway").click()
    page.get_by_text("Tick the confirmation: this version did not pass the gate.").wait_for()
    candidate.refresh_from_db()
    assert candidate.status == ModelStatus.CANDIDATE and not candidate.gate_override_reason

    page.get_by_label("I have read the failed checks above and want this version live anyway").check()
    page.get_by_label("Why it should go live despite the failed checks").fill(reason)
    screenshot(page, "model-promote-failed-gate")
    page.get_by_role("button", name=f"Promote v{candidate.number} anyway").click()
    page.get_by_text(f"Model v{candidate.number} is live").wait_for()

    candidate.refresh_from_db()
    assert candidate.status == ModelStatus.LIVE and candidate.gate_override_reason == reason
    assert candidate.gate_overridden_by == a.admin
    assert ModelVersion.objects.for_institution(a.institution).get(pk=a.version.pk).status == ModelStatus.RETIRED
    page.goto(f"{live_server.url}/i/alpha/models/v{candidate.number}/")
    override = page.locator("#gate-override")
    assert "Promoted although it did not pass the promotion gate" in override.inner_text()
    assert reason in override.inner_text() and "alpha-admin" in override.inner_text()
