"""API reads of students that BYPASS THE ORM and DRF's serializer: the one place that does.

Why it exists: a student by id and an unfiltered page of students are the API's hottest reads
(external systems sync through them). Through the ORM and ``StudentSerializer`` they cost the web
worker about twice the CPU of a plain statement and a dict, and the targets of
``bench/api_load.py`` (student detail p95 <= 50 ms, 50-item list p95 <= 100 ms at 20 clients on
this 2-core machine) are missed without this module; with it they are met. The measurements are
in ``docs/benchmarks.md`` ("One engine, one read path").

What it gives up, so that nothing else has to:

- **Tenancy is enforced by hand here**: every statement (``students/sql.py``, ``API_STUDENT_*``)
  binds ``%(institution_id)s`` from the request's institution, instead of going through the
  scoped manager. ``docs/tenancy.md`` lists this module among the places that do this.
- **The representation is written out by hand** (:func:`student_representation`): exactly what
  ``StudentSerializer`` returns for the same row. ``tests/api/test_orm_bypass_reads.py`` compares
  the two for varied students, every page, page errors and another institution's ids; a field
  added to the serializer fails that test until it is added here (:data:`FIELDS`).

- **It steps aside under need-to-know access**: while the request's member reads through a
  ``ViewerRestriction`` (their institution turned need-to-know on and they are an advisor), the
  row rule of ``interventions.need_to_know`` must narrow every read, and only the ORM applies it;
  :func:`may_bypass` is then False and the viewset takes the ORM path. The readers here refuse to
  run under a restriction, so a caller that forgets to ask cannot serve a hidden student.

Only ``StudentViewSet``'s GET of one student and its unfiltered page-number list come here;
filters, the sync cursor and every write keep the ORM.
"""

from __future__ import annotations

import datetime
import json

from django.db import connection
from django.utils import timezone
from rest_framework import serializers

from institutions.access import id_from_input
from institutions.models import Institution
from institutions.scoping import current_viewer_restriction

from . import sql

# The serializer's fields in its order; the statements' columns in theirs.
FIELDS = ("id", "external_id", "name", "email", "program", "cohort", "status", "outcome", "outcome_date",
          "features", "advisor", "created_at", "updated_at")
_COLUMNS = ("id", "external_id", *sql.STUDENT_FIELDS, "features", "created_at", "updated_at")
_DATE = serializers.DateField()


def _datetime_text(value: datetime.datetime, zone) -> str:
    """What DRF's ``DateTimeField`` gives for an aware datetime (timestamptz always is): ISO 8601
    in the current time zone, UTC written as ``Z``; the zone is looked up once per response."""
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def student_representation(row: tuple, zone=None) -> dict:
    """``StudentSerializer(student).data`` for one row of the ``API_STUDENT_*`` statements."""
    zone = timezone.get_current_timezone() if zone is None else zone
    values = dict(zip(_COLUMNS, row, strict=True))
    features = values["features"]
    return {
        "id": values["id"],
        "external_id": values["external_id"],
        "name": values["name"],
        "email": values["email"],
        "program": values["program"],
        "cohort": values["cohort"],
        "status": values["status"],
        "outcome": values["outcome"],
        "outcome_date": None if values["outcome_date"] is None else _DATE.to_representation(values["outcome_date"]),
        # Django has psycopg2 hand jsonb over as text; JSONField decodes it the same way.
        "features": json.loads(features) if isinstance(features, str) else features,
        "advisor": values["advisor_id"],
        "created_at": _datetime_text(values["created_at"], zone),
        "updated_at": _datetime_text(values["updated_at"], zone),
    }


def may_bypass() -> bool:
    """Whether these reads may serve the current request: not under need-to-know (see above)."""
    return current_viewer_restriction() is None


def _refuse_under_restriction() -> None:
    if not may_bypass():
        raise RuntimeError("students.orm_bypass cannot apply need-to-know access; take the ORM path")


def student_read(*, institution: Institution, student_id) -> dict | None:
    """The represented student with ``student_id`` (from the URL) of ``institution``, or None for
    a missing student, another institution's and an id that cannot be one (as ``access_student``)."""
    _refuse_under_restriction()
    number = id_from_input(student_id)
    if number is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql.API_STUDENT_BY_ID, {"institution_id": institution.pk, "id": number})
        row = cursor.fetchone()
    return None if row is None else student_representation(row)


class StudentPages:
    """The institution's students in id order, for Django's paginator: ``count()`` and slices of
    represented students (what the paginator asks of a queryset)."""

    def __init__(self, institution: Institution):
        _refuse_under_restriction()
        self.institution_id = institution.pk

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql.API_STUDENT_COUNT, {"institution_id": self.institution_id})
            return cursor.fetchone()[0]

    def __getitem__(self, window: slice) -> list[dict]:
        if not isinstance(window, slice) or window.step not in (None, 1):
            raise TypeError("StudentPages supports only contiguous slices")
        start = window.start or 0
        if window.stop is not None and window.stop <= start:
            return []
        limit = None if window.stop is None else window.stop - start
        with connection.cursor() as cursor:
            cursor.execute(sql.API_STUDENT_PAGE,
                           {"institution_id": self.institution_id, "limit": limit, "offset": start})
            rows = cursor.fetchall()
        zone = timezone.get_current_timezone()
        return [student_representation(row, zone) for row in rows]
