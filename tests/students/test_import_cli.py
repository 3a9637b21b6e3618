"""``manage.py import_students``: same service, same job, same report as the page."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from institutions.models import Job, JobKind, JobStatus
from students.models import Student, StudentChange

from .import_helpers import GOOD_CSV, OULAD_EXCERPT, database_state, write_file

pytestmark = pytest.mark.django_db


def run_cli(*args) -> str:
    out = StringIO()
    call_command("import_students", *map(str, args), "--no-progress", stdout=out)
    return out.getvalue()


def test_cli_imports_records_a_job_and_reimport_changes_nothing(tenant_a, tmp_path):
    path = write_file(tmp_path, "good.csv", GOOD_CSV)
    output = run_cli("alpha", path)
    assert "Imported: 1 created, 1 updated, 0 unchanged." in output
    job = Job.objects.for_institution(tenant_a.institution).get(kind=JobKind.IMPORT)
    assert job.status == JobStatus.SUCCEEDED and job.triggered_by == "cli" and job.counts["created"] == 1
    assert StudentChange.objects.for_institution(tenant_a.institution).filter(job=job).count() == 2

    again = run_cli("alpha", path)
    assert "0 created, 0 updated, 2 unchanged (the file matches what is stored: nothing changed)" in again


def test_cli_prints_every_problem_writes_the_error_csv_and_fails(tenants, tmp_path):
    a, b = tenants
    path = write_file(tmp_path, "bad.csv", GOOD_CSV.replace(",12,", ",abc,"))
    errors_csv = tmp_path / "errors.csv"
    before = database_state(a.institution, b.institution)
    out = StringIO()
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_students", "alpha", str(path), "--no-progress", "--errors-csv", str(errors_csv),
                     stdout=out)
    reason = "'abc' is not a plain decimal number: write it as 12 or 3.5 (digits, a '.' for decimals)"
    assert f"row 2, column 'units_approved', value 'abc': {reason}" in out.getvalue()
    assert errors_csv.read_text().splitlines()[1] == f'2,units_approved,abc,"{reason}"'
    assert database_state(a.institution, b.institution) == before


def test_cli_file_level_error_is_reported_with_its_code(tenant_a, tmp_path):
    path = write_file(tmp_path, "header.csv", "student_id,name\r\n")
    with pytest.raises(CommandError, match=r"no data rows.*\[header_only\]"):
        run_cli("alpha", path)


def test_cli_mapping_file_composes_oulad_ids(tenant_b, tmp_path):
    mapping = {"columns": {"code_module": "program", "code_presentation": "cohort", "final_result": "outcome",
                           "studied_credits": {"target": "new_feature", "kind": "numeric"}},
               "id_columns": ["code_module", "code_presentation", "id_student"]}
    mapping_path = write_file(tmp_path, "mapping.json", json.dumps(mapping))
    output = run_cli("beta", OULAD_EXCERPT, "--mapping", mapping_path)
    assert "Imported: 308 created" in output
    student = Student.objects.for_institution(tenant_b.institution).get(external_id="AAA-2013J-11391")
    assert student.features == {"studied_credits": 240.0}


def test_cli_refuses_unknown_institution(tmp_path, db):
    with pytest.raises(CommandError, match="No institution with slug 'nowhere'"):
        run_cli("nowhere", write_file(tmp_path, "g.csv", GOOD_CSV))
