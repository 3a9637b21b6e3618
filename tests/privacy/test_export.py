"""Subject access: an administrator downloads (JSON) or reads (page) everything held about one student."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from audit.models import AccessEntry

from .conftest import EMAIL, EXTERNAL_ID, NAME

pytestmark = pytest.mark.django_db


def test_the_export_holds_the_record_history_predictions_interventions_flags_activity_imports_and_access_log(
        tenants, subject, client):
    a, _b = tenants
    client.force_login(a.admin)
    response = client.get(reverse("student-export-json", args=[a.institution.slug, subject.student.pk]))
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    assert response["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.content)
    record = document["student"]
    assert (record["external_id"], record["name"], record["email"]) == (EXTERNAL_ID, NAME, EMAIL)
    assert record["features"]["units_approved"] == 4
    assert document["data_changes"][0]["created"] is True and document["data_changes"][0]["source"] == "import"
    assert document["predictions"] and document["predictions"][0]["explanation"]
    assert document["latest_prediction"]["flagged"] is True
    notes = [i["notes"] for i in document["interventions"]]
    assert notes == [f"{NAME} ({EMAIL}) asked about fees."]  # confidential included; the other student's not
    assert [f["reason"] for f in document["flags"]] == [f"{NAME} missed three tutorials"]
    assert [(e["kind"], e["count"]) for e in document["activity_events"]] == [("view", 3)]
    lines = [line for job in document["import_history"] for line in job["change_list_lines"]]
    assert lines and all(line["external_id"] == EXTERNAL_ID for line in lines)
    assert any(job["report_lines"] for job in document["import_history"])
    assert document["webhook_deliveries"] and all(
        d["payload"]["external_id"] == EXTERNAL_ID for d in document["webhook_deliveries"])
    assert [entry["by"] for entry in document["access_log"]] == [a.admin.username]
    grants = document["other_linked_records"]["student access grants"]
    assert [(g["user"], g["reason"]) for g in grants] == [(a.advisor.pk, f"Covering for {NAME}'s advisor")]
    # Nothing of another student.
    assert "KEEP-0001" not in response.content.decode()
    # The export itself is a read of the record, in the access log.
    assert AccessEntry.objects.for_institution(a.institution).filter(
        action="subject_export", student_id=subject.student.pk, actor_user_id=a.admin.pk).count() == 1


def test_the_export_page_shows_the_same_document_readably(tenants, subject, client):
    a, _b = tenants
    client.force_login(a.admin)
    page = client.get(reverse("student-export", args=[a.institution.slug, subject.student.pk]))
    assert page.status_code == 200 and page["Cache-Control"].startswith("no-store")
    html = page.content.decode()
    for text in (EXTERNAL_ID, NAME, EMAIL, "asked about fees", "missed three tutorials", "MATH101",
                 "Who saw this record", "Download as JSON"):
        assert text in html, text
    assert "KEEP-0001" not in html


def test_another_institutions_admin_cannot_export_a_student(tenants, client):
    a, b = tenants
    client.force_login(b.admin)
    for name in ("student-export", "student-export-json"):
        assert client.get(reverse(name, args=[b.institution.slug, a.students[0].pk])).status_code == 404
        assert client.get(reverse(name, args=[a.institution.slug, a.students[0].pk])).status_code == 404
    # B's own student with the same external id exports B's record only.
    same = b.students[0]
    document = json.loads(client.get(reverse("student-export-json", args=[b.institution.slug, same.pk])).content)
    assert document["student"]["id"] == same.pk and document["institution"]["slug"] == b.institution.slug
