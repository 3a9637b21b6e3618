"""Reads through statements built once per process (institutions.prepared) return exactly what the
ORM returns, and find nothing where the ORM finds nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from institutions.prepared import _prepared_form, _tenant_row_plan, execute_prepared, tenant_row
from institutions.scoping import institution_scope
from students.api import StudentSerializer
from students.models import Student

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
