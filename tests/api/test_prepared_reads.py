"""Reads through statements built once per process (institutions.prepared) return exactly what the
ORM returns, and find nothing where the ORM finds nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from institutions.prepared import tenant_row
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
    reads = [q["sql"] for q in queries.captured_queries if "students_student" in q["sql"]]
    assert len(reads) == 1 and " t WHERE t." in reads[0]
