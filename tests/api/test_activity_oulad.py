"""Activity features from real OULAD click data (excerpt of studentVle_AAA.csv; see tests/data/README.md).

The expected values are computed here independently, in plain Python over the CSV, from the
definitions in docs/api.md; the platform computes them in SQL from the events sent to the API.
"""

from __future__ import annotations

import csv
import zoneinfo
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from students.models import ActivityEvent, Student
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db

EXCERPT = Path(__file__).resolve().parent.parent / "data" / "oulad_studentVle_AAA_excerpt.csv"
TERM_START = date(2013, 10, 1)  # AAA 2013J: OULAD dates count days from the presentation start
TERM_DAYS = 268


def _rows():
    with EXCERPT.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _timestamp(day_offset: int) -> datetime:
    return datetime.combine(TERM_START + timedelta(days=day_offset), time(12, 0), tzinfo=UTC)


def _expected(rows, tz):
    term_end = TERM_START + timedelta(days=TERM_DAYS - 1)
    start = datetime.combine(TERM_START, time.min, tzinfo=tz)
    end = datetime.combine(term_end + timedelta(days=1), time.min, tzinfo=tz)
    cut1, cut2 = start + (end - start) / 3, start + 2 * (end - start) / 3
    per_student = defaultdict(list)
    for row in rows:
        moment = _timestamp(int(row["date"]))
        if start <= moment < end:
            per_student[row["id_student"]].append((moment, int(row["sum_click"])))
    expected = {}
    for student, events in per_student.items():
        days = sorted({moment.astimezone(tz).date() for moment, _ in events})
        expected[student] = {
            "activity_total": float(sum(c for _, c in events)),
            "activity_active_days": float(len(days)),
            "activity_early": float(sum(c for m, c in events if m < cut1)),
            "activity_middle": float(sum(c for m, c in events if cut1 <= m < cut2)),
            "activity_late": float(sum(c for m, c in events if m >= cut2)),
            "activity_days_since_last": float((end.date() - days[-1]).days),
            "activity_duration_days": float((days[-1] - days[0]).days),
        }
    return expected, term_end


def test_oulad_clicks_become_the_documented_activity_features(tenant_a, client_a,
                                                              django_capture_on_commit_callbacks):
    rows = _rows()
    students = sorted({row["id_student"] for row in rows})
    assert len(rows) == 1189 and len(students) == 4
    for external_id in students:
        StudentFactory(institution=tenant_a.institution, external_id=external_id)
    events = [{"student": row["id_student"], "timestamp": _timestamp(int(row["date"])).isoformat(), "type": "view",
               "course": f"{row['code_module']}-{row['code_presentation']}", "count": int(row["sum_click"])}
              for row in rows]
    for start in range(0, len(events), 500):
        response = client_a.post("/api/v1/institutions/alpha/activity-events/", {"events": events[start:start + 500]},
                                 format="json")
        assert response.status_code == 201, response.json()
    assert ActivityEvent.objects.for_institution(tenant_a.institution).count() == len(rows)

    expected, term_end = _expected(rows, zoneinfo.ZoneInfo(tenant_a.institution.timezone))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post("/api/v1/institutions/alpha/activity-events/recompute-features/",
                                 {"term_start": TERM_START.isoformat(), "term_end": term_end.isoformat(),
                                  "as_of": "2014-09-01T00:00:00Z"}, format="json")
    assert response.status_code == 202
    job = client_a.get(response["Location"]).json()
    assert job["status"] == "succeeded", job
    for external_id in students:
        features = Student.objects.for_institution(tenant_a.institution).get(external_id=external_id).features
        got = {key: value for key, value in features.items() if key.startswith("activity_")}
        assert got == expected[external_id], external_id
    # The excerpt holds a student who stopped early and one who stayed to the end: the features tell them apart.
    totals = {s: expected[s]["activity_late"] for s in students}
    assert min(totals.values()) == 0.0 and max(totals.values()) > 100
