"""Reads through statements built once per process (institutions.prepared) return exactly what the
ORM returns, and find nothing where the ORM finds nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from institutions.prepared import (
    TenantRows,
    _prepared_form,
    _tenant_row_plan,
    _tenant_rows_plan,
    execute_prepared,
    tenant_row,
)
from institutions.scoping import institution_scope
from students.api import StudentSerializer
from students.models import Student
from tests.factories import StudentFactory

from .test_fast_representation import varied_students

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_tenant_row_loads_a_student_exactly_as_the_orm_does(tenant_a):
    for student in varied_students(tenant_a):
        found = tenant_row(Student, institution=tenant_a.institution, pk=str(student.pk))
        orm = Student.objects.for_institution(tenant_a.institution).get(pk=student.pk)
        assert type(found) is Student and field_values(found) == field_values(orm)
        assert found._state.adding is False and found._state.db == "default"


@pytest.mark.parametrize("raw", ["other", "missing", "abc", "1.5", "", str(10**30), "-1"])
def test_tenant_row_finds_nothing_where_the_orm_finds_nothing(tenants, raw):
    a, b = tenants
    pk = {"other": str(b.students[0].pk), "missing": "987654321"}.get(raw, raw)
    assert tenant_row(Student, institution=a.institution, pk=pk) is None


def test_student_detail_is_what_the_orm_read_serialises_to_and_hides_other_institutions(tenants, client_a):
    a, b = tenants
    students = varied_students(a)
    with institution_scope(a.institution):
        for student in students:
            response = client_a.get(reverse("api-student-detail", args=[a.institution.slug, student.pk]))
            assert response.status_code == 200
            assert response.json() == StudentSerializer(Student.objects.get(pk=student.pk)).data

    missing = client_a.get(reverse("api-student-detail", args=[a.institution.slug, 987654321]))
    for pk in (b.students[0].pk, "abc", 10**30):
        response = client_a.get(reverse("api-student-detail", args=[a.institution.slug, pk]))
        assert response.status_code == 404 and response.json() == missing.json()


def test_student_detail_reads_the_row_through_the_prepared_statement(tenant_a, client_a):
    # The routed viewset (predictions' subclass with the risk filters) keeps the fast read.
    student = tenant_a.students[0]
    with CaptureQueriesContext(connection) as queries:
        response = client_a.get(reverse("api-student-detail", args=[tenant_a.institution.slug, student.pk]))
    assert response.status_code == 200 and response.json()["id"] == student.pk
    assert statement_runs(queries, _tenant_row_plan(Student, "default")[0]) == 1


def statement_runs(queries, sql: str) -> int:
    """How often ``sql`` ran, as itself (logged with its values filled in) or as EXECUTE of its
    prepared form."""
    name, _prepare = _prepared_form(sql)
    head = sql.split("%s")[0]
    return sum(q["sql"].startswith((head, f"EXECUTE {name}(")) for q in queries.captured_queries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)  # closes the connection
def test_a_fixed_read_is_prepared_once_per_connection_and_again_after_a_reconnect(tenant_a):
    student = tenant_a.students[0]
    sql, _plan = _tenant_row_plan(Student, "default")
    name, prepare = _prepared_form(sql)

    def read_twice():
        with CaptureQueriesContext(connection) as queries:
            rows = [tenant_row(Student, institution=tenant_a.institution, pk=student.pk) for _ in range(2)]
        assert [row.pk for row in rows] == [student.pk, student.pk]
        return [q["sql"] for q in queries.captured_queries]

    first = read_twice()
    assert [q.startswith("EXECUTE ") for q in first].count(True) == 2
    assert first.count(prepare) <= 1  # at most once: an earlier test may have prepared it on this connection
    connection.close()  # a new session has no prepared statements
    again = read_twice()
    assert again.count(prepare) == 1 and sum(q.startswith(f"EXECUTE {name}(") for q in again) == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler(tenant_a):
    sql, _plan = _tenant_row_plan(Student, "default")
    with override_settings(DATABASE_PREPARED_STATEMENTS=False), CaptureQueriesContext(connection) as queries:
        found = tenant_row(Student, institution=tenant_a.institution, pk=tenant_a.students[0].pk)
    assert found.pk == tenant_a.students[0].pk
    assert [q["sql"] for q in queries.captured_queries] == [sql.replace("%s", "{}").format(
        tenant_a.institution.pk, tenant_a.students[0].pk)]


def test_prepared_form_numbers_the_parameters_in_order():
    name, prepare = _prepared_form("SELECT a FROM t WHERE b = %s AND c = %s")
    assert name.startswith("dp_") and prepare == f"PREPARE {name} AS SELECT a FROM t WHERE b = $1 AND c = $2"
    assert _prepared_form("SELECT a FROM t WHERE b = %s AND c = %s")[0] == name


def test_execute_prepared_runs_the_plain_statement_off_postgresql_or_when_off(tenant_a):
    with override_settings(DATABASE_PREPARED_STATEMENTS=False), connection.cursor() as cursor:
        execute_prepared(cursor, "SELECT %s + %s", [2, 3])
        assert cursor.fetchone()[0] == 5


def interleaved_students(a, b, count: int):
    """``count`` more students in each institution, created alternately so that their ids interleave."""
    for i in range(count):
        for tenant in (a, b):
            StudentFactory(institution=tenant.institution, external_id=f"L{i:03d}")


def list_body(client, slug, **params):
    response = client.get(reverse("api-student-list", args=[slug]), params)
    return response.status_code, response.json()


def test_student_list_pages_are_the_orm_pages_and_never_another_institutions(tenants, client_a):
    a, b = tenants
    varied_students(a)
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


@pytest.mark.parametrize("params", [
    {}, {"page": "last"}, {"page": "2", "page_size": "3"}, {"page": "0"}, {"page": "abc"}, {"page": "99"},
    {"page": "-1"}, {"page": "1.5"}, {"page_size": "0"}, {"page_size": "x"}, {"page_size": "100000"},
])
def test_student_list_answers_every_page_request_as_the_orm_path_does(tenants, client_a, params):
    # An empty filter value narrows nothing but takes the ORM path: the two answers must agree.
    a, b = tenants
    interleaved_students(a, b, 4)
    fast_status, fast = list_body(client_a, a.institution.slug, **params)
    orm_status, orm = list_body(client_a, a.institution.slug, cohort="", **params)
    assert fast_status == orm_status
    if fast_status == 200:
        for link in ("next", "previous"):
            assert (fast[link] is None) == (orm[link] is None)
            fast[link] = orm[link] = None
    assert fast == orm


def test_an_empty_institution_lists_an_empty_first_page(tenants, client_a):
    a, _b = tenants
    Student.objects.for_institution(a.institution).delete()
    assert list_body(client_a, a.institution.slug) == (200, {"count": 0, "next": None, "previous": None,
                                                             "results": []})
    assert list_body(client_a, a.institution.slug, page=2)[0] == 404


def test_the_unfiltered_list_reads_through_the_prepared_statements_and_a_filtered_one_through_the_orm(
    tenant_a, client_a
):
    count_sql, page_sql, _plan, _row = _tenant_rows_plan(Student, "default")
    with CaptureQueriesContext(connection) as queries:
        status, body = list_body(client_a, tenant_a.institution.slug, page_size=2)
    assert status == 200 and len(body["results"]) == 2
    assert statement_runs(queries, count_sql) == 1 and statement_runs(queries, page_sql) == 1
    with CaptureQueriesContext(connection) as queries:
        status, body = list_body(client_a, tenant_a.institution.slug, status="active")
    assert status == 200 and statement_runs(queries, count_sql) == statement_runs(queries, page_sql) == 0
    assert {row["status"] for row in body["results"]} == {"active"}


def test_tenant_rows_count_and_slices_are_the_querysets(tenants):
    a, b = tenants
    interleaved_students(a, b, 3)
    rows = TenantRows(Student, a.institution)
    with institution_scope(a.institution):
        ordered = list(Student.objects.order_by("pk"))
    assert rows.count() == len(ordered)
    for start, stop in ((0, 2), (1, 4), (len(ordered) - 1, len(ordered) + 5), (len(ordered), len(ordered) + 1), (3, 3)):
        got = rows[start:stop]
        assert [row.pk for row in got] == [student.pk for student in ordered[start:stop]]
        assert [row._asdict() for row in got] == [field_values(student) for student in ordered[start:stop]]
    for bad in (slice(-1, 2), slice(0, None), slice(0, 4, 2)):
        with pytest.raises((TypeError, ValueError)):
            rows[bad]
    with pytest.raises(TypeError):
        rows[0]


def plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's query plan")
def test_a_page_of_students_reads_no_row_of_another_institution(tenants):
    # Pages come in id order; without an (institution, id) index PostgreSQL walks the primary key
    # and filters out every other institution's row it passes, so a page of a small institution
    # cost as much as the larger ones created before it (20 ms instead of 1 ms behind 100,000).
    a, b = tenants
    interleaved_students(a, b, 30)
    _count_sql, page_sql, _plan, _row = _tenant_rows_plan(Student, "default")
    limit, offset = 5, 20
    with connection.cursor() as cursor:
        # Only the plans that read the rows an index gives in order may compete.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {page_sql}",
                       [a.institution.pk, limit, offset, a.institution.pk])
        plan = cursor.fetchone()[0]
        cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
    nodes = list(plan_nodes(plan[0]["Plan"]))
    assert sum(node.get("Rows Removed by Filter", 0) for node in nodes) == 0
    id_scans = [node for node in nodes if node.get("Parent Relationship") == "InitPlan"]
    assert [node["Actual Rows"] for node in id_scans] == [limit]  # the Limit over the ids
    scans = [node for node in nodes if "Scan" in node["Node Type"] and node.get("Relation Name")]
    assert {node["Index Name"] for node in scans} == {"student_inst_id"}
