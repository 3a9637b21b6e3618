"""Reading students through the API: the body of a student, pages of the list, and what another
institution's or a malformed id gets (the same 404 as a missing one)."""

from __future__ import annotations

import datetime
import json

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from institutions.scoping import institution_scope
from students.api import StudentSerializer
from students.models import EnrolmentStatus, Outcome, Student
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


def detail_url(tenant, pk):
    return reverse("api-student-detail", args=[tenant.institution.slug, pk])


def list_body(client, slug, **params):
    response = client.get(reverse("api-student-list", args=[slug]), params)
    return response.status_code, response.json()


def interleaved_students(a, b, count: int):
    """``count`` more students in each institution, created alternately so that their ids interleave."""
    for i in range(count):
        for tenant in (a, b):
            StudentFactory(institution=tenant.institution, external_id=f"L{i:03d}")


def test_student_body_has_the_documented_fields_in_order_and_formats(tenant_a, client_a):
    student = StudentFactory(
        institution=tenant_a.institution, external_id="EDGE1", name="Zoë \"Q\" O'Neil", email="", program="",
        cohort="2024-autumn", status=EnrolmentStatus.ON_LEAVE, outcome=Outcome.GRADUATED,
        outcome_date=datetime.date(2025, 7, 1), advisor=tenant_a.advisor,
        features={"units_approved": 1e-05, "nested": {"a": [1, 2.5, None]}, "note": "ç\u2028é"},
    )
    moment = datetime.datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=datetime.UTC)
    Student.objects.for_institution(tenant_a.institution).filter(pk=student.pk).update(
        created_at=moment, updated_at=moment
    )

    response = client_a.get(detail_url(tenant_a, student.pk))

    assert response.status_code == 200
    body = json.loads(response.content)
    assert list(body) == [
        "id", "external_id", "name", "email", "program", "cohort", "status", "outcome", "outcome_date",
        "features", "advisor", "created_at", "updated_at",
    ]
    assert body == {
        "id": student.pk, "external_id": "EDGE1", "name": "Zoë \"Q\" O'Neil", "email": "", "program": "",
        "cohort": "2024-autumn", "status": "on_leave", "outcome": "graduated", "outcome_date": "2025-07-01",
        "features": {"units_approved": 1e-05, "nested": {"a": [1, 2.5, None]}, "note": "ç\u2028é"},
        "advisor": tenant_a.advisor.pk, "created_at": "2025-03-04T05:06:07.891011Z",
        "updated_at": "2025-03-04T05:06:07.891011Z",
    }


def test_student_detail_is_the_scoped_row_and_another_institutions_or_a_malformed_id_is_a_missing_one(
    tenants, client_a
):
    a, b = tenants
    with institution_scope(a.institution):
        for student in a.students:
            response = client_a.get(detail_url(a, student.pk))
            assert response.status_code == 200
            assert response.json() == StudentSerializer(Student.objects.get(pk=student.pk)).data

    missing = client_a.get(detail_url(a, 987654321))
    assert missing.status_code == 404
    for pk in (b.students[0].pk, "abc", 10**30):
        response = client_a.get(detail_url(a, pk))
        assert response.status_code == 404 and response.json() == missing.json()


def test_student_list_pages_hold_every_student_once_in_id_order_and_never_another_institutions(
    tenants, client_a
):
    a, b = tenants
    interleaved_students(a, b, 12)
    with institution_scope(a.institution):
        ordered = list(Student.objects.order_by("id"))
    assert len(ordered) > 12 and not {s.pk for s in b.students} & {s.pk for s in ordered}
    for size in (1, 5, 50):
        pages = -(-len(ordered) // size)
        for number in range(1, pages + 1):
            status, body = list_body(client_a, a.institution.slug, page=number, page_size=size)
            expected = ordered[(number - 1) * size:number * size]
            assert status == 200 and body["count"] == len(ordered)
            assert body["results"] == StudentSerializer(expected, many=True).data
            assert (body["next"] is None) == (number == pages) and (body["previous"] is None) == (number == 1)


@pytest.mark.parametrize(("params", "status", "first_index", "size"), [
    ({}, 200, 0, 50),
    ({"page": "last"}, 200, 0, 50),
    ({"page": "2", "page_size": "3"}, 200, 3, 3),
    ({"page_size": ""}, 200, 0, 50),  # empty: the default, like any empty query value
    ({"page_size": "0"}, 400, None, None),  # page_size is a whole number from 1 (a 400, not the default)
    ({"page_size": "x"}, 400, None, None),
    ({"page_size": "2.5"}, 400, None, None),
    ({"page_size": "9999"}, 200, 0, 500),  # more than 500 reads as 500
    ({"page": "0"}, 404, None, None),
    ({"page": "abc"}, 404, None, None),
    ({"page": "99"}, 404, None, None),
    ({"page": "-1"}, 404, None, None),
    ({"page": "1.5"}, 404, None, None),
])
def test_student_list_answers_page_requests_like_drf_page_number_pagination(
    tenants, client_a, params, status, first_index, size
):
    a, b = tenants
    interleaved_students(a, b, 4)
    with institution_scope(a.institution):
        ordered = [student.pk for student in Student.objects.order_by("id")]
    got_status, body = list_body(client_a, a.institution.slug, **params)
    assert got_status == status
    if status == 200:
        assert [row["id"] for row in body["results"]] == ordered[first_index:first_index + size]


def test_an_empty_institution_lists_an_empty_first_page(tenants, client_a):
    a, _b = tenants
    Student.objects.for_institution(a.institution).delete()
    assert list_body(client_a, a.institution.slug) == (200, {"count": 0, "next": None, "previous": None,
                                                             "results": []})
    assert list_body(client_a, a.institution.slug, page=2)[0] == 404


def test_a_list_page_costs_the_same_queries_whatever_its_size(tenants, client_a):
    a, b = tenants
    interleaved_students(a, b, 20)
    list_body(client_a, a.institution.slug)  # the key's first use also records it
    counts = []
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            status, body = list_body(client_a, a.institution.slug, page_size=size)
        assert status == 200 and len(body["results"]) == size
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]


def plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


INSTITUTION_ID_INDEXES = {"student_inst_id", "students_student_institution_id_key"}


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside the test's transaction
def test_a_page_of_students_is_read_through_the_institution_id_index_without_passing_other_rows(tenants):
    # Pages come in id order; without the (institution, id) index PostgreSQL walks the primary key
    # and filters out every other institution's row it passes, so a page of a small institution
    # would cost as much as the larger ones created before it.
    a, b = tenants
    # Another institution's rows interleave with A's and outnumber them, as behind a large one.
    for chunk in range(10):
        for tenant, count in ((b, 200), (a, 20)):
            Student.objects.for_institution(tenant.institution).bulk_create(
                Student(institution=tenant.institution, external_id=f"M{chunk}-{i:03d}") for i in range(count)
            )
    # The keys of a page, as the API's paginator reads them first (institutions.api.pagination).
    page = Student.objects.for_institution(a.institution).order_by("id").values("pk")[100:150]
    sql, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        # What autovacuum keeps true in production: statistics of these rows (not of whatever an
        # earlier test left) and a visibility map, so reading keys from an index needs no row.
        # As the owner (the login): the application role may not VACUUM (docs/tenancy.md).
        cursor.execute("RESET ROLE")
        cursor.execute("VACUUM ANALYZE students_student")
        cursor.execute("SET ROLE " + connection.ops.quote_name(settings.DATABASE_APP_ROLE))
        # Only the plans that read the keys an index gives in order may compete.
        cursor.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
        cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
    nodes = list(plan_nodes(plan[0]["Plan"]))
    assert sum(node.get("Rows Removed by Filter", 0) for node in nodes) == 0, plan
    scans = [node for node in nodes if "Scan" in node["Node Type"] and node.get("Relation Name")]
    # Either (institution_id, id) index: the model's, or the unique key the same-institution links
    # point at (docs/tenancy.md, "Database-level guard").
    assert {node["Index Name"] for node in scans} <= INSTITUTION_ID_INDEXES and scans
