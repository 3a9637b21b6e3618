"""An administrator's import, in a real browser: upload -> map -> validate -> import -> scores appear."""

from __future__ import annotations

import re
import time

import pytest

from students.models import Student
from tests.interventions.conftest import trained_a  # noqa: F401 - fixture

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HEADER = "Student id;Name;Program;Units approved;Tuition up to date;Gender\n"


def export_file(tmp_path, rows: int = 12):
    lines = [HEADER]
    for i in range(rows):
        units = i * 2 % 31
        lines.append(f"N{i:04d};New student {i};Nursing;{units};{'yes' if i % 3 else 'no'};{'f' if i % 2 else 'm'}\n")
    path = tmp_path / "sis-export.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_admin_uploads_maps_and_imports_a_file_and_the_new_students_get_scores(
    live_server, page, screenshot, tmp_path, trained_a,  # noqa: F811 - the fixture imported above
):
    a = trained_a
    log_in(page, live_server, "alpha-admin")
    page.goto(f"{live_server.url}/i/alpha/imports/")
    page.get_by_label("CSV or Excel (.xlsx) file").set_input_files(str(export_file(tmp_path)))
    page.get_by_role("button", name="Upload and preview").click()

    page.get_by_role("heading", name="Preview and column mapping").wait_for()
    targets = {"Student id": "external_id", "Name": "name", "Program": "program",
               "Units approved": "feature:units_approved", "Tuition up to date": "feature:tuition_up_to_date",
               "Gender": "feature:gender"}
    for column, target in targets.items():
        page.get_by_label(f"Column “{column}”").select_option(target)
    screenshot(page, "import-mapping")
    page.get_by_role("button", name="Validate the whole file").click()

    page.get_by_role("button", name=re.compile(r"Import 12 rows")).click()
    deadline = time.monotonic() + 90
    student = None
    while time.monotonic() < deadline:
        student = Student.objects.for_institution(a.institution).filter(external_id="N0000").first()
        if student is not None:
            page.goto(f"{live_server.url}/i/alpha/students/{student.pk}/")
            if page.locator("#risk-value").count():
                break
        time.sleep(1)
    assert student is not None, "the import did not create the students"
    assert student.name == "New student 0" and student.features["units_approved"] == 0.0
    risk = page.locator("#risk-value").inner_text()
    assert re.fullmatch(r"\d{1,3}\.\d%", risk), risk
    assert page.locator("li.factor").count() >= 1
    page.goto(f"{live_server.url}/i/alpha/flagged/?q=N00")
    assert page.locator("table.worklist tbody tr").count() >= 1
