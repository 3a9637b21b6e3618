"""Reads outside a transaction are recorded through the process's batch (audit/batching.py): each
entry is written within the wait bound or when the batch is full, once, for its own institution;
the log's readers see this process's waiting entries at once; an entry of a student erased while
it waited does not name the student; a normal exit writes what waits. These tests run outside a
test transaction (``transaction=True``), as pages and the API do in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from audit import batching
from audit.models import AccessAction, AccessEntry
from audit.selectors import AccessLogQuery, access_entry_search, student_access_entries
from audit.services import Accessor, access_record
from institutions.scoping import institution_scope
from tests.conftest import database_url_of_test_database

pytestmark = pytest.mark.django_db(transaction=True)
READER = Accessor(name="reader", ip_address="198.51.100.9")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def empty_batch(transactional_db, settings):
    # The test settings write each entry at once (AUDIT_BATCH_SIZE=1); here, as in production, they wait.
    settings.AUDIT_BATCH_SIZE = 100
    batching.flush()
    yield
    batching.flush()  # before the test's rows are flushed away (this fixture ends before the database's)


def test_an_entry_whose_institution_went_while_it_waited_is_dropped_and_the_rest_are_written(tenants, settings):
    a, b = tenants
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    read(a, a.students[0])
    read(b, b.students[0])
    b_id = b.institution.pk
    b.institution.delete()
    assert batching.flush() == 1
    assert [entry.student_id for entry in stored(a)] == [a.students[0].pk]
    assert not AccessEntry.objects.unscoped().filter(institution_id=b_id).exists()


def stored(tenant) -> list[AccessEntry]:
    return list(AccessEntry.objects.for_institution(tenant.institution).order_by("id"))


def wait_for(predicate, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def read(tenant, student, action=AccessAction.PROFILE_VIEW):
    access_record(institution=tenant.institution, accessor=READER, action=action, student_id=student.pk)


def test_a_read_outside_a_transaction_waits_and_is_written_by_the_batch_within_the_bound(tenants, settings):
    a, b = tenants
    settings.AUDIT_BATCH_MAX_WAIT_MS = 100
    read(a, a.students[0])
    assert batching.waiting() == 1  # not written by the request itself
    assert wait_for(lambda: len(stored(a)) == 1, seconds=3)
    [entry] = stored(a)
    assert (entry.action, entry.student_id, entry.actor_name, entry.ip_address) == (
        AccessAction.PROFILE_VIEW, a.students[0].pk, "reader", "198.51.100.9")
    assert stored(b) == [] and batching.waiting() == 0


def test_a_full_batch_is_written_at_once_in_one_statement_each_entry_once_for_its_own_institution(
        tenants, settings):
    a, b = tenants
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000  # only the size can set it off
    settings.AUDIT_BATCH_SIZE = 4
    for student in a.students[:3]:
        read(a, student)
    read(b, b.students[0])
    assert wait_for(lambda: len(stored(a)) == 3 and len(stored(b)) == 1, seconds=3)
    assert sorted(entry.student_id for entry in stored(a)) == sorted(s.pk for s in a.students[:3])
    assert [entry.student_id for entry in stored(b)] == [b.students[0].pk]
    time.sleep(0.2)
    assert len(stored(a)) == 3 and len(stored(b)) == 1


def test_the_access_log_search_and_the_subject_export_see_this_processs_waiting_reads(tenant_a, settings):
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    student = tenant_a.students[0]
    read(tenant_a, student)
    with institution_scope(tenant_a.institution):
        found = list(access_entry_search(institution=tenant_a.institution,
                                         query=AccessLogQuery(student_id=student.pk)))
    assert [entry.student_id for entry in found] == [student.pk]
    assert batching.waiting() == 0


def test_the_profiles_who_saw_this_panel_does_not_write_for_its_own_page(tenant_a, settings):
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    read(tenant_a, tenant_a.students[0])
    with institution_scope(tenant_a.institution):
        assert student_access_entries(institution=tenant_a.institution, student_id=tenant_a.students[0].pk) == []
    assert batching.waiting() == 1


def test_a_flush_inside_a_transaction_does_not_depend_on_that_transactions_commit(tenant_a, settings):
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    read(tenant_a, tenant_a.students[0])
    with pytest.raises(RuntimeError), transaction.atomic():
        assert batching.flush() == 1
        raise RuntimeError("the caller's transaction rolls back")
    assert [entry.student_id for entry in stored(tenant_a)] == [tenant_a.students[0].pk]


def test_a_failed_flush_inside_a_transaction_raises_in_the_caller_and_keeps_the_entries(tenant_a, settings,
                                                                                         monkeypatch):
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    read(tenant_a, tenant_a.students[0])

    def broken(rows):
        raise ValueError("not a database error")

    monkeypatch.setattr(batching, "write_rows", broken)
    with pytest.raises(ValueError, match="not a database error"), transaction.atomic():
        batching.flush()
    assert batching.waiting() == 1  # put back, not lost
    monkeypatch.undo()
    assert batching.flush() == 1
    assert [entry.student_id for entry in stored(tenant_a)] == [tenant_a.students[0].pk]


def test_a_read_of_a_student_deleted_while_it_waited_is_written_without_the_student(tenant_a, settings):
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    gone, kept = tenant_a.students[0], tenant_a.students[1]
    read(tenant_a, gone)
    read(tenant_a, kept)
    gone_id = gone.pk
    with connection.cursor() as cursor, institution_scope(tenant_a.institution):
        cursor.execute("DELETE FROM students_student WHERE id = %s", [gone_id])
    batching.flush()
    entries = stored(tenant_a)
    assert sorted((entry.student_id is None, entry.action) for entry in entries) == [
        (False, AccessAction.PROFILE_VIEW), (True, AccessAction.PROFILE_VIEW)]
    assert gone_id not in {entry.student_id for entry in entries}


def test_over_the_limit_a_request_writes_its_own_entry_and_nothing_is_dropped(tenant_a, settings):
    settings.AUDIT_BATCH_MAX_WAIT_MS = 60_000
    settings.AUDIT_BATCH_LIMIT = 2
    for student in tenant_a.students[:3]:
        read(tenant_a, student)
    assert batching.waiting() == 2 and len(stored(tenant_a)) == 1  # the third wrote itself
    batching.flush()
    assert sorted(e.student_id for e in stored(tenant_a)) == sorted(s.pk for s in tenant_a.students[:3])


def test_a_page_read_outside_a_transaction_is_recorded_through_the_batch(tenants, settings):
    a, b = tenants
    settings.AUDIT_BATCH_MAX_WAIT_MS = 100
    client = Client()
    client.force_login(a.advisor)
    assert client.get(reverse("student-detail", args=["alpha", a.students[0].pk])).status_code == 200
    assert wait_for(lambda: [e.student_id for e in stored(a)] == [a.students[0].pk], seconds=3)
    assert client.get(reverse("student-detail", args=["alpha", b.students[0].pk])).status_code == 404
    batching.flush()
    assert len(stored(a)) == 1 and stored(b) == []


def test_a_normal_exit_writes_the_entries_still_waiting(tenant_a):
    # A separate process (as a gunicorn worker or a command is) with a wait no run would reach.
    student = tenant_a.students[0]
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings; settings.AUDIT_BATCH_SIZE = 100\n"
        "from audit.services import Accessor, access_record\n"
        "from audit import batching\n"
        "from institutions.models import Institution\n"
        f"institution = Institution.objects.get(pk={tenant_a.institution.pk})\n"
        f"access_record(institution=institution, accessor=Accessor(name='exiting'), action='profile_view', "
        f"student_id={student.pk})\n"
        "assert batching.waiting() == 1\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": database_url_of_test_database(), "AUDIT_BATCH_MAX_WAIT_MS": "600000"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [(e.actor_name, e.student_id) for e in stored(tenant_a)] == [("exiting", student.pk)]
