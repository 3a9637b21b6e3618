"""Erasing a student leaves nothing that names them, anywhere in the database or the change lists,
and touches no other student and no other institution."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AccessEntry
from institutions.models import Job, JobKind
from interventions.models import Flag, Intervention
from predictions.models import LatestPrediction, ModelVersion, Prediction
from privacy.models import ErasureRecord
from students.models import ActivityEvent, Student, StudentChange

from .conftest import EMAIL, EXTERNAL_ID, NAME, NEEDLES

pytestmark = pytest.mark.django_db


def database_hits(needle: str) -> dict[str, int]:
    """Rows of every table in the database whose text (all columns, JSON included; bytea decoded)
    contains ``needle``, ignoring case."""
    hits = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_schema, table_name FROM information_schema.tables "
                       "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')")
        tables = cursor.fetchall()
        for schema, table in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}" AS t WHERE t::text ILIKE %s',
                           [f"%{needle}%"])
            count = cursor.fetchone()[0]
            cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                           "AND table_name = %s AND data_type = 'bytea'", [schema, table])
            for (column,) in cursor.fetchall():
                cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}" '
                               f'WHERE encode("{column}", \'escape\') ILIKE %s', [f"%{needle}%"])
                count += cursor.fetchone()[0]
            if count:
                hits[f"{schema}.{table}"] = count
    return hits


def file_hits(needle: str, institution) -> list[str]:
    """Files of the institution (uploads, change lists) that contain ``needle``."""
    root = Path(settings.MEDIA_ROOT) / "imports" / str(institution.pk)
    return [str(path) for path in root.rglob("*") if path.is_file()
            and needle.lower() in path.read_bytes().decode("utf-8", "replace").lower()]


def erase_page(client, tenant, student):
    return reverse("student-erase", args=[tenant.institution.slug, student.pk])


def test_erasing_a_student_leaves_no_trace_of_their_id_name_or_email_in_any_table_or_change_list(
        tenants, subject, client):
    a, _b = tenants
    student = subject.student
    for needle in NEEDLES:
        assert database_hits(needle), f"the set-up should have spread {needle!r} around"
    assert any(file_hits(EXTERNAL_ID, a.institution))
    client.force_login(a.admin)
    page = client.get(erase_page(client, a, student))
    assert page.status_code == 200 and page["Cache-Control"].startswith("no-store")
    counts = page.context["counts"]
    assert counts["deleted"]["students"] == 1
    assert counts["deleted"]["predictions"] == Prediction.objects.for_institution(a.institution).filter(
        student=student).count() >= 1
    for kind in ("interventions", "flags", "activity events", "latest predictions", "student changes",
                 "webhook deliveries about the student", "staff admin log entries", "student access grants",
                 "survey marks"):
        assert counts["deleted"].get(kind), (kind, counts)
    for kind in ("jobs", "interventions", "risk snapshots (the student's id)", "import change lists (CSV files)",
                 "access log entries (unlinked from the student)"):
        assert counts["cleaned"].get(kind), (kind, counts)

    response = client.post(erase_page(client, a, student), {"confirm_external_id": EXTERNAL_ID})
    assert response.status_code == 302

    for needle in NEEDLES:
        assert database_hits(needle) == {}, needle
        assert file_hits(needle, a.institution) == [], needle
    record = ErasureRecord.objects.for_institution(a.institution).get()
    assert record.erased_by == a.admin and record.via == "page" and record.counts == counts
    # The other student's note keeps its words, without the name.
    other_note = Intervention.objects.for_institution(a.institution).get(student=subject.other).notes
    assert other_note == "Came with [erased] to the meeting; discussed the timetable."
    # Unlinked, not deleted: who read the record is still known; the erasure itself is logged.
    assert AccessEntry.objects.for_institution(a.institution).filter(
        action="profile_view", student_id__isnull=True).count() == 1
    assert AccessEntry.objects.for_institution(a.institution).filter(action="student_erased").count() == 1


def test_erasure_keeps_other_students_aggregates_and_the_models(tenants, subject, client):
    a, _b = tenants
    student, other = subject.student, subject.other
    versions = list(ModelVersion.objects.for_institution(a.institution).values_list("pk", "metrics", "training_counts"))
    other_predictions = Prediction.objects.for_institution(a.institution).filter(student=other).count()
    students_before = Student.objects.for_institution(a.institution).count()
    import_jobs = Job.objects.for_institution(a.institution).filter(kind=JobKind.IMPORT)
    import_counts = list(import_jobs.values_list("pk", "counts"))
    client.force_login(a.admin)
    client.post(erase_page(client, a, student), {"confirm_external_id": EXTERNAL_ID})
    assert Student.objects.for_institution(a.institution).count() == students_before - 1
    assert list(ModelVersion.objects.for_institution(a.institution).values_list(
        "pk", "metrics", "training_counts")) == versions
    assert Prediction.objects.for_institution(a.institution).filter(student=other).count() == other_predictions
    assert LatestPrediction.objects.for_institution(a.institution).filter(student=other).exists()
    assert list(import_jobs.values_list("pk", "counts")) == import_counts
    # The import report keeps the other student's line.
    commit = import_jobs.filter(params__commit=True).first() or import_jobs.last()
    listed = {line["external_id"] for job in import_jobs for line in job.result.get("changes", [])}
    assert "KEEP-0001" in listed and EXTERNAL_ID not in listed, commit.result


def test_a_wrong_confirmation_erases_nothing_and_says_why(tenants, subject, client):
    a, _b = tenants
    client.force_login(a.admin)
    before = (Student.objects.for_institution(a.institution).count(),
              Prediction.objects.for_institution(a.institution).count(),
              StudentChange.objects.for_institution(a.institution).count())
    for typed in ("", "zqx-erase-7731", "ZQX-ERASE-773", NAME):
        response = client.post(erase_page(client, a, subject.student), {"confirm_external_id": typed})
        assert response.status_code == 200
        assert b"nothing was erased" in response.content or b"This field is required" in response.content
    assert before == (Student.objects.for_institution(a.institution).count(),
                      Prediction.objects.for_institution(a.institution).count(),
                      StudentChange.objects.for_institution(a.institution).count())
    assert not ErasureRecord.objects.for_institution(a.institution).exists()
    assert database_hits(EMAIL)


def test_only_administrators_reach_the_erasure_and_export_pages(tenants, client):
    a, _b = tenants
    student = a.students[0]
    for user in (a.advisor, a.viewer):
        client.force_login(user)
        for name in ("student-erase", "student-export", "student-export-json"):
            assert client.get(reverse(name, args=[a.institution.slug, student.pk])).status_code == 403
        assert client.post(reverse("student-erase", args=[a.institution.slug, student.pk]),
                           {"confirm_external_id": student.external_id}).status_code == 403
    assert Student.objects.for_institution(a.institution).filter(pk=student.pk).exists()


def test_an_admin_of_another_institution_cannot_see_or_erase_a_student_and_bs_same_id_survives(tenants, client):
    a, b = tenants
    student_a = a.students[0]
    student_b = Student.objects.for_institution(b.institution).get(external_id=student_a.external_id)
    Flag.objects.for_institution(b.institution).create(student=student_b, reason="B's own flag")
    ActivityEvent.objects.for_institution(b.institution).create(student=student_b, occurred_at=student_b.created_at,
                                                                kind="view")
    client.force_login(b.admin)
    for name in ("student-erase", "student-export", "student-export-json"):
        assert client.get(reverse(name, args=[b.institution.slug, student_a.pk])).status_code == 404
        assert client.get(reverse(name, args=[a.institution.slug, student_a.pk])).status_code == 404
    assert client.post(reverse("student-erase", args=[b.institution.slug, student_a.pk]),
                       {"confirm_external_id": student_a.external_id}).status_code == 404
    assert Student.objects.for_institution(a.institution).filter(pk=student_a.pk).exists()

    client.force_login(a.admin)
    assert client.post(reverse("student-erase", args=[a.institution.slug, student_a.pk]),
                       {"confirm_external_id": student_a.external_id}).status_code == 302
    assert not Student.objects.for_institution(a.institution).filter(pk=student_a.pk).exists()
    student_b.refresh_from_db()
    assert student_b.name and Flag.objects.for_institution(b.institution).filter(student=student_b).exists()
    assert ActivityEvent.objects.for_institution(b.institution).filter(student=student_b).exists()
    assert not ErasureRecord.objects.for_institution(b.institution).exists()
    erasure_id = str(ErasureRecord.objects.for_institution(a.institution).get().erasure_id)
    b_client = Client()
    b_client.force_login(b.admin)
    listed = b_client.get(reverse("erasure-list", args=[b.institution.slug]))
    assert listed.context["object_list"].count() == 0 and erasure_id not in listed.content.decode()
    assert b_client.get(reverse("erasure-list", args=[a.institution.slug])).status_code == 404


def test_a_short_external_id_or_name_is_removed_where_it_is_an_id_and_never_blanks_other_words():
    from privacy.erasure import _Needles, _scrub

    needles = _Needles.of([Student(pk=7, external_id="7", name="Li", email="li@example.edu")])
    report = {"changes": [{"row": 2, "external_id": "7", "field": "name", "old": "", "new": "Li"},
                          {"row": 3, "external_id": "8", "field": "units", "old": "7", "new": "9"}],
              "summary": "7 created; wrote to li@example.edu"}
    assert _scrub(report, needles) == {
        "changes": [{"row": 3, "external_id": "8", "field": "units", "old": "7", "new": "9"}],
        "summary": "7 created; wrote to [erased]"}
    assert _scrub("Saw 7 students; Li's friend came", needles) == "Saw 7 students; Li's friend came"
    long = _Needles.of([Student(pk=9, external_id="ZQX-9", name="Quillon Vexmarrow", email="")])
    assert _scrub("Came with quillon vexmarrow; ZQX-9 and ZQX-90", long) == "Came with [erased]; [erased] and ZQX-90"
