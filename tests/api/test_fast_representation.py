"""The hand-written read representations return exactly what DRF's generic serializers return."""

from __future__ import annotations

import datetime
import json
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from institutions.api.representation import choice_strings, choice_text, datetime_text
from institutions.scoping import institution_scope
from students.api import StudentSerializer
from students.api_bulk import StudentUpsertItemSerializer
from students.models import EnrolmentStatus, Outcome, Student
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


def drf_representation(student) -> dict:
    """What DRF's generic ModelSerializer makes of the student, field object by field object."""
    return serializers.ModelSerializer.to_representation(StudentSerializer(), student)


def varied_students(tenant):
    institution = tenant.institution
    return [
        *tenant.students,
        StudentFactory(institution=institution, external_id="EDGE1", name="", email="", program="", cohort="",
                       status=EnrolmentStatus.ON_LEAVE, outcome=Outcome.GRADUATED,
                       outcome_date=datetime.date(2025, 7, 1), advisor=None,
                       features={"units_approved": 1e-05, "nested": {"a": [1, 2.5, None]}, "note": "ç\u2028é"}),
        StudentFactory(institution=institution, external_id="EDGE2", name="Zoë \"Q\" O'Neil",
                       email="zoe@example.edu", status=EnrolmentStatus.INACTIVE, outcome=Outcome.TRANSFERRED,
                       advisor=tenant.advisor, features={}),
    ]


def test_student_representation_equals_drf_for_every_field(tenant_a):
    students = varied_students(tenant_a)
    with institution_scope(tenant_a.institution):
        for stored in students:
            fresh = Student.objects.get(pk=stored.pk)  # values as read from the database
            for student in (stored, fresh):
                fast = StudentSerializer(student).data
                assert list(fast) == list(StudentSerializer.Meta.fields)
                assert fast == drf_representation(student)
                assert JSONRenderer().render(fast) == JSONRenderer().render(drf_representation(student))


def test_student_representation_equals_drf_with_microseconds_and_in_another_time_zone(tenant_a):
    student = tenant_a.students[0]
    student.created_at = datetime.datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=datetime.UTC)
    student.updated_at = datetime.datetime(2026, 10, 25, 1, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Lisbon"))
    assert StudentSerializer(student).data == drf_representation(student)
    with timezone.override(zoneinfo.ZoneInfo("America/Sao_Paulo")):
        fast = StudentSerializer(student).data
        assert fast == drf_representation(student)
        assert fast["created_at"] == "2026-03-28T21:59:59.123456-03:00"


def test_naive_datetime_and_unknown_choice_follow_drf(tenant_a):
    student = tenant_a.students[0]
    student.updated_at = datetime.datetime(2026, 1, 2, 3, 4, 5)  # naive: DRF makes it aware
    student.status = "not-a-choice"
    assert StudentSerializer(student).data == drf_representation(student)
    assert datetime_text(None, datetime.UTC) is None
    assert choice_text("", choice_strings(Outcome.choices)) == ""


def test_non_default_formats_fall_back_to_drf(tenant_a, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATETIME_FORMAT": "%Y-%m-%d %H:%M"}
    student = tenant_a.students[0]
    data = StudentSerializer(student).data
    assert data["created_at"] == timezone.localtime(student.created_at).strftime("%Y-%m-%d %H:%M")


def test_subclasses_keep_drf_generic_representation(tenant_a):
    class Narrower(StudentSerializer):
        class Meta(StudentSerializer.Meta):
            fields = ["id", "external_id"]

    student = tenant_a.students[0]
    assert Narrower(student).data == {"id": student.pk, "external_id": student.external_id}
    item = StudentUpsertItemSerializer(student, context={"definitions": [], "advisors": {}})
    assert item.data == drf_representation(student)


def test_list_and_detail_bodies_equal_drf_rendering(tenant_a, client_a):
    varied_students(tenant_a)
    url = reverse("api-student-list", args=["alpha"])
    body = client_a.get(url, {"page_size": 50}).json()
    with institution_scope(tenant_a.institution):
        expected = [drf_representation(s) for s in Student.objects.order_by("id")]
    assert body["results"] == json.loads(JSONRenderer().render(expected))
    detail = client_a.get(reverse("api-student-detail", args=["alpha", expected[-1]["id"]])).json()
    assert detail == json.loads(JSONRenderer().render(expected[-1]))
