"""A student's enrolments are part of their subject access export, go with their erasure, and the
roster import's stored preview keeps no trace of an erased student's id."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from courses.models import Enrolment, RosterImport, RosterImportStatus
from courses.roster_import import roster_import_confirm, roster_import_upload
from institutions.scoping import institution_scope
from privacy.erasure import student_erase
from privacy.export import student_export

from .roster_files import roster_zip

pytestmark = pytest.mark.django_db


def _import_roster(tenant):
    """Upload, then confirm: each queues a job, run in-process when its transaction commits."""
    with institution_scope(tenant.institution):
        with TestCase.captureOnCommitCallbacks(execute=True):
            roster = roster_import_upload(institution=tenant.institution, user=tenant.admin,
                                          uploaded_files=[SimpleUploadedFile("roster.zip", roster_zip())],
                                          student_id_field="identifier")
        roster.refresh_from_db()
        with TestCase.captureOnCommitCallbacks(execute=True):
            roster_import_confirm(institution=tenant.institution, roster_import=roster, user=tenant.admin)
        roster.refresh_from_db()
        assert roster.status == RosterImportStatus.COMMITTED
        return roster


def test_the_subject_access_export_lists_the_students_enrolments(tenants):
    a, b = tenants
    _import_roster(a)
    _import_roster(b)
    student = a.students[0]  # S001: one section in A (and B's S001 is someone else)
    with institution_scope(a.institution):
        document = student_export(institution=a.institution, student=student, exported_by=a.admin)
    enrolments = document["other_linked_records"]["enrolments"]
    assert [row["source_id"] for row in enrolments] == ["e-s1-m1"]
    assert {row["student"] for row in enrolments} == {student.pk}


def test_erasing_a_student_removes_their_enrolments_and_their_id_from_the_roster_preview(tenants):
    a, b = tenants
    _import_roster(a)
    _import_roster(b)
    student = a.students[0]
    with institution_scope(a.institution):
        assert "S001" in json.dumps(RosterImport.objects.get().preview)
        student_erase(institution=a.institution, student=student, confirm_external_id="S001", erased_by=a.admin)
        assert not Enrolment.objects.filter(student_id=student.pk).exists()
        assert Enrolment.objects.count() == 4
        assert "S001" not in json.dumps(RosterImport.objects.get().preview)
    with institution_scope(b.institution):  # B's student with the same external id keeps everything
        assert Enrolment.objects.count() == 5
        assert "S001" in json.dumps(RosterImport.objects.get().preview)
