"""The worked nightly SIS sync of docs/api.md, run as written against a live server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from institutions.api_keys import ALL_SCOPES, api_key_create
from predictions.models import LatestPrediction
from students.models import ActivityEvent, Student
from tests.predictions.conftest import trained_a  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
DOCUMENTED_API = 'API = "https://risk.example.edu/api/v1/institutions/northfield"'


def documented_python_sync() -> str:
    section = DOCS.read_text(encoding="utf-8").split("## Worked example: a nightly SIS sync", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_python_nightly_sync_runs_against_a_live_server(
    live_server, trained_a, monkeypatch, capsys  # noqa: F811 - the fixture imported above
):
    _key, raw = api_key_create(institution=trained_a.institution, name="SIS", scopes=list(ALL_SCOPES))
    monkeypatch.setenv("DROPOUT_API_KEY", raw)
    code = documented_python_sync()
    assert DOCUMENTED_API in code
    namespace: dict = {}
    exec(compile(code.replace(DOCUMENTED_API, f'API = "{live_server.url}/api/v1/institutions/alpha"'),
                 str(DOCS), "exec"), namespace)

    students = Student.objects.for_institution(trained_a.institution)
    enrolled = students.filter(outcome="enrolled").order_by("id")[0]
    units = (enrolled.features["units_approved"] + 1) % 30
    changed = [
        {"external_id": enrolled.external_id, "features": {**enrolled.features, "units_approved": units}},
        {"external_id": "SIS-NEW-1", "name": "New Student", "cohort": "2026",
         "features": {"units_approved": 2.0, "tuition_up_to_date": False, "gender": "f"}},
    ]
    events = [{"student": enrolled.external_id, "timestamp": "2026-03-02T14:05:00Z", "type": "view",
               "course": "MATH101", "count": 3, "id": "moodle-991827"}]

    try:
        stamp = namespace["nightly_sync"](changed, events, "2000-01-01T00:00:00Z")
    finally:
        namespace["session"].close()  # its kept-alive connection would hold a server thread open

    new = students.get(external_id="SIS-NEW-1")
    assert students.get(pk=enrolled.pk).features["units_approved"] == units
    assert ActivityEvent.objects.for_institution(trained_a.institution).filter(student=enrolled).count() == 1
    latest = LatestPrediction.objects.for_institution(trained_a.institution)
    assert latest.filter(student=new).exists() and latest.filter(student=enrolled).exists()
    printed = capsys.readouterr().out
    assert "students: 1 created, 1 updated" in printed
    band = latest.get(student=new).band
    assert re.search(rf"^SIS-NEW-1 {band} ", printed, re.M)
    assert stamp > "2000-01-01T00:00:00Z"
