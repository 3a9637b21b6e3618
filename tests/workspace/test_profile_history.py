"""The student's profile shows the recorded changes to their data (imports, API, web edits),
in the institution's own feature labels, and never another institution's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.scoping import institution_scope
from students.models import ChangeSource
from students.services import student_save

pytestmark = pytest.mark.django_db


def test_profile_lists_the_students_data_changes_newest_first_with_feature_labels(client, tenants):
    a, b = tenants
    student = a.students[0]
    with institution_scope(a.institution):
        student_save(institution=a.institution, student=student, data={"features": {"units_approved": 9.0}},
                     source=ChangeSource.IMPORT, actor=a.admin)
        student_save(institution=a.institution, student=student, data={"program": "Nursing (evening)"},
                     source=ChangeSource.API)
    # B's student with the same external id changes too; A's profile must not show it.
    with institution_scope(b.institution):
        student_save(institution=b.institution, student=b.students[0], data={"program": "Beta-only program"},
                     source=ChangeSource.API)
    client.force_login(a.advisor)
    response = client.get(reverse("student-detail", args=["alpha", student.pk]))
    history = response.context["data_changes"]
    assert [c["source"] for c in history] == ["API", "File import"]
    assert history[0]["fields"] == [{"label": "Program", "old": "Nursing", "new": "Nursing (evening)"}]
    assert history[1]["fields"] == [{"label": "Units approved", "old": 1.0, "new": 9.0}]
    body = response.content.decode()
    assert "Changes to this student's data" in body and "Units approved: 1.0 → 9.0" in body
    assert "Beta-only program" not in body


def test_profile_without_recorded_changes_says_so(client, tenants):
    a, _b = tenants
    client.force_login(a.advisor)
    body = client.get(reverse("student-detail", args=["alpha", a.students[3].pk])).content.decode()
    assert "No changes recorded" in body
