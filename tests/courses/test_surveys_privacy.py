"""Survey marks about a student are in their subject access export and go with their erasure;
the instructor's other marks, and the other institution's student with the same id, keep theirs."""

from __future__ import annotations

import pytest

from courses.models import SurveyMark
from institutions.scoping import institution_scope
from privacy.erasure import student_erase
from privacy.export import student_export

from .survey_helpers import links_by_recipient, open_survey

pytestmark = pytest.mark.django_db


def _mark_everyone(client, world, link, section):
    roster = client.get(link, follow=True).context["sections"][0]["rows"]
    assert roster[0]["student"] is not None
    data = {"section": section.pk}
    for row in roster:
        data[f"m:{row['student'].pk}:{world.types[0].pk}"] = "on"
        data[f"c:{row['student'].pk}"] = f"Worried about {row['student'].external_id}"
    assert client.post(link, data).status_code == 302
    return [row["student"] for row in roster]


def test_a_students_survey_marks_are_exported_and_erased_with_them(client, worlds):
    a, b = worlds
    open_survey(a)
    open_survey(b)
    links = links_by_recipient()
    students_a = _mark_everyone(client, a, links["teacher0@alpha.example.edu"], a.sections[0])
    _mark_everyone(client, b, links["teacher0@beta.example.edu"], b.sections[0])
    student = students_a[0]
    with institution_scope(a.institution):
        document = student_export(institution=a.institution, student=student, exported_by=a.tenant.admin)
        exported = [row for rows in document["other_linked_records"].values() for row in rows
                    if row.get("comment") == f"Worried about {student.external_id}" and "invitation" in row]
        assert len(exported) == 1  # the mark itself (the alert it raised is listed too, by the alerts' own rows)
        student_erase(institution=a.institution, student=student, confirm_external_id=student.external_id,
                      erased_by=a.tenant.admin)
        assert not SurveyMark.objects.filter(student_id=student.pk).exists()
        assert SurveyMark.objects.count() == len(students_a) - 1
    with institution_scope(b.institution):
        same_id = SurveyMark.objects.filter(student__external_id=student.external_id)
        assert SurveyMark.objects.count() == 3 and same_id.count() == 1
