"""The student reads that bypass the ORM (``students/orm_bypass.py``) answer exactly what the ORM
and ``StudentSerializer`` answer: the same body for the same student, the same pages and page
errors, and the same 404 for another institution's, a missing or a malformed id.

Each request is sent twice with the same key: once to the API (the bypass), once to a subclass of
the viewset, which the bypass leaves to the ORM path, so any difference in a field, an order, a
link or an error shows here.
"""

from __future__ import annotations

import datetime
import json

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIRequestFactory

from institutions.scoping import institution_scope
from predictions.api_students import StudentViewSet
from students import orm_bypass, sql
from students.api import StudentSerializer
from students.models import EnrolmentStatus, Outcome, Student
from tests.api.test_student_reads import INSTITUTION_ID_INDEXES, plan_nodes
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


class OrmStudentViewSet(StudentViewSet):
    """The viewset the API serves at ``/students/``, reading through the ORM and the serializer."""

    reads_bypass_orm = False


def through_orm(raw_key, slug, *, pk=None, params=None):
    factory = APIRequestFactory()
    path = f"/api/v1/institutions/{slug}/students/" + (f"{pk}/" if pk is not None else "")
    request = factory.get(path, params or {}, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    actions = {"get": "retrieve" if pk is not None else "list"}
    kwargs = {"institution_slug": slug, **({"pk": str(pk)} if pk is not None else {})}
    response = OrmStudentViewSet.as_view(actions, basename="api-student")(request, **kwargs)
    response.render()
    return response.status_code, json.loads(response.content)


def through_api(client, slug, *, pk=None, params=None):
    path = f"/api/v1/institutions/{slug}/students/" + (f"{pk}/" if pk is not None else "")
    response = client.get(path, params or {})
    return response.status_code, response.json()


def varied_students(a, b):
    """Students of A with every shape a field can take, interleaved with B's."""
    moment = datetime.datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=datetime.UTC)
    shapes = [
        {"name": "Zoë \"Q\" O'Neil", "email": "", "program": "", "features": {"nested": {"a": [1, 2.5, None]}}},
        {"status": EnrolmentStatus.ON_LEAVE, "outcome": Outcome.GRADUATED, "outcome_date": datetime.date(2025, 7, 1),
         "advisor": a.advisor, "features": {"units": 1e-05, "note": "ç\u2028é", "big": 2**60}},
        {"status": EnrolmentStatus.INACTIVE, "outcome": Outcome.DROPPED_OUT, "features": {}},
        {"cohort": "2024-autumn", "features": {"flag": True, "none": None, "list": []}},
    ]
    created = []
    for index, shape in enumerate(shapes * 3):
        created.append(StudentFactory(institution=a.institution, external_id=f"V{index:02d}", **shape))
        StudentFactory(institution=b.institution, external_id=f"W{index:02d}")
    with institution_scope(a.institution):
        Student.objects.filter(pk=created[0].pk).update(created_at=moment, updated_at=moment)
    return created


def test_a_student_read_bypassing_the_orm_is_the_serializers_body_for_every_shape_of_student(
    tenants, client_a, admin_key_a
):
    a, b = tenants
    slug = a.institution.slug
    for student in [*varied_students(a, b), *a.students]:
        bypass = through_api(client_a, slug, pk=student.pk)
        assert bypass[0] == 200
        assert bypass == through_orm(admin_key_a[1], slug, pk=student.pk)
        with institution_scope(a.institution):
            assert bypass[1] == StudentSerializer(Student.objects.get(pk=student.pk)).data
    assert list(bypass[1]) == list(orm_bypass.FIELDS) == list(StudentSerializer.Meta.fields)


@pytest.mark.parametrize("pk", ["987654321", "abc", str(10**30), "0", "-1", "1e3", " 1"])
def test_a_missing_or_malformed_id_answers_the_orms_404(tenants, client_a, admin_key_a, pk):
    a, _b = tenants
    bypass = through_api(client_a, a.institution.slug, pk=pk)
    assert bypass[0] == 404 and bypass == through_orm(admin_key_a[1], a.institution.slug, pk=pk)


def test_another_institutions_student_is_a_missing_one_through_the_bypass(tenants, client_a, admin_key_a):
    a, b = tenants
    for student in b.students:
        bypass = through_api(client_a, a.institution.slug, pk=student.pk)
        assert bypass[0] == 404
        assert bypass == through_orm(admin_key_a[1], a.institution.slug, pk=student.pk)
        assert bypass == through_api(client_a, a.institution.slug, pk=987654321)


@pytest.mark.parametrize("params", [
    {}, {"page": "1"}, {"page": "2", "page_size": "5"}, {"page": "3", "page_size": "5"}, {"page": "last"},
    {"page": "last", "page_size": "7"}, {"page_size": "1"}, {"page_size": "0"}, {"page_size": "x"},
    {"page_size": "100000"}, {"page": "0"}, {"page": "abc"}, {"page": "99"}, {"page": "-1"}, {"page": "1.5"},
    {"unknown": "1"},
])
def test_a_page_of_students_bypassing_the_orm_is_the_orms_page(tenants, client_a, admin_key_a, params):
    a, b = tenants
    varied_students(a, b)
    bypass = through_api(client_a, a.institution.slug, params=params)
    orm = through_orm(admin_key_a[1], a.institution.slug, params=params)
    assert bypass == orm
    if bypass[0] == 200:
        with institution_scope(a.institution):
            ids = set(Student.objects.values_list("pk", flat=True))
        assert {row["id"] for row in bypass[1]["results"]} <= ids and bypass[1]["count"] == len(ids)


def test_every_page_of_every_size_is_the_orms_and_holds_no_other_institutions_student(
    tenants, client_a, admin_key_a
):
    a, b = tenants
    varied_students(a, b)
    with institution_scope(a.institution):
        total = Student.objects.count()
    b_ids = set(Student.objects.for_institution(b.institution).values_list("pk", flat=True))
    for size in (1, 4, 50):
        for number in range(1, -(-total // size) + 1):
            params = {"page": str(number), "page_size": str(size)}
            bypass = through_api(client_a, a.institution.slug, params=params)
            assert bypass == through_orm(admin_key_a[1], a.institution.slug, params=params)
            assert not {row["id"] for row in bypass[1]["results"]} & b_ids


def test_filtered_lists_and_the_sync_cursor_keep_the_orm_and_agree(tenants, client_a, admin_key_a):
    a, b = tenants
    varied_students(a, b)
    for params in ({"status": "on_leave"}, {"updated_since": "2020-01-01T00:00:00Z"}, {"outcome": "graduated"},
                   {"flagged": "false"}, {"band": "high"}):
        bypass = through_api(client_a, a.institution.slug, params=params)
        assert bypass[0] == 200 and bypass == through_orm(admin_key_a[1], a.institution.slug, params=params)


def test_an_empty_institution_pages_alike(tenants, client_a, admin_key_a):
    a, _b = tenants
    Student.objects.for_institution(a.institution).delete()
    for params in ({}, {"page": "2"}, {"page": "last"}):
        assert through_api(client_a, a.institution.slug, params=params) == through_orm(
            admin_key_a[1], a.institution.slug, params=params)


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside the test's transaction
def test_the_bypass_page_reads_its_keys_through_the_institution_id_index_without_passing_other_rows(tenants):
    a, b = tenants
    for chunk in range(10):
        for tenant, count in ((b, 200), (a, 20)):
            Student.objects.for_institution(tenant.institution).bulk_create(
                Student(institution=tenant.institution, external_id=f"M{chunk}-{i:03d}") for i in range(count)
            )
    with connection.cursor() as cursor:
        # As the owner (the login): the application role may not VACUUM (docs/tenancy.md).
        cursor.execute("RESET ROLE")
        cursor.execute("VACUUM ANALYZE students_student")
        cursor.execute("SET ROLE " + connection.ops.quote_name(settings.DATABASE_APP_ROLE))
        cursor.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
        cursor.execute(
            b"EXPLAIN (ANALYZE, FORMAT JSON) " + sql.API_STUDENT_PAGE.as_string(cursor.connection).encode(),
            {"institution_id": a.institution.pk, "limit": 50, "offset": 100},
        )
        plan = cursor.fetchone()[0]
        cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
    nodes = list(plan_nodes(plan[0]["Plan"]))
    assert sum(node.get("Rows Removed by Filter", 0) for node in nodes) == 0, plan
    keys = [node for node in nodes if node["Node Type"] == "Index Only Scan"]
    assert keys and {node["Index Name"] for node in keys} <= INSTITUTION_ID_INDEXES, plan


def test_the_apis_plain_reads_do_go_through_the_bypass_and_filtered_ones_do_not(tenants, client_a):
    # Otherwise every comparison above would compare the ORM with itself.
    from django.test.utils import CaptureQueriesContext

    a, _b = tenants
    slug = a.institution.slug
    student = a.students[0]
    through_api(client_a, slug)  # the key's first use also records it

    def statements_run(**request):
        with CaptureQueriesContext(connection) as queries:
            status, _body = through_api(client_a, slug, **request)
        assert status == 200
        return " ".join(query["sql"] for query in queries.captured_queries)

    rendered = {name: getattr(sql, name).as_string(connection.connection).split("%(")[0]
                for name in ("API_STUDENT_BY_ID", "API_STUDENT_COUNT", "API_STUDENT_PAGE")}
    assert rendered["API_STUDENT_BY_ID"] in statements_run(pk=student.pk)
    listed = statements_run(params={"page_size": "3"})
    assert rendered["API_STUDENT_COUNT"] in listed and rendered["API_STUDENT_PAGE"] in listed
    # (An empty ``cursor`` or ``updated_since`` now reads as not sent: a plain list, bypass and all.)
    for params in ({"status": "active"}, {"flagged": "false"}, {"updated_since": "2020-01-01T00:00:00Z"}):
        filtered = statements_run(params=params)
        assert not any(statement in filtered for statement in rendered.values())


@pytest.mark.parametrize("zone", ["UTC", "America/Sao_Paulo", "Asia/Kolkata"])
def test_the_bypass_writes_times_as_drf_does_in_any_active_time_zone(tenants, zone):
    from django.utils import timezone

    a, b = tenants
    students = varied_students(a, b)
    with institution_scope(a.institution), timezone.override(zone):
        for student in students:
            with connection.cursor() as cursor:
                cursor.execute(sql.API_STUDENT_BY_ID, {"institution_id": a.institution.pk, "id": student.pk})
                row = cursor.fetchone()
            assert orm_bypass.student_representation(row) == StudentSerializer(Student.objects.get(pk=student.pk)).data
