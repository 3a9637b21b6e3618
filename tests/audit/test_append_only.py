"""The access log is append-only in the database: the application cannot change or delete an
entry, by the ORM or by raw SQL; retention, erasure and removing an institution are the only
changes, each through its own database function, each limited to what it is for."""

from __future__ import annotations

import datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import services
from audit.models import AccessAction, AccessEntry
from institutions.models import Institution

pytestmark = pytest.mark.django_db


def _entry(tenant, *, student=None, days_ago=0, action=AccessAction.PROFILE_VIEW) -> AccessEntry:
    services.access_record(
        institution=tenant.institution, accessor=services.Accessor(name=tenant.admin.username, user_id=tenant.admin.pk,
                                                                   ip_address="192.0.2.7"),
        action=action, student_id=student.pk if student else None,
    )
    entry = AccessEntry.objects.for_institution(tenant.institution).order_by("-id").first()
    if days_ago:
        # Backdating is an INSERT (which is allowed), not an update: write the row again, older.
        old = AccessEntry.objects.for_institution(tenant.institution).create(
            action=entry.action, actor_user_id=entry.actor_user_id, actor_name=entry.actor_name,
            student_id=entry.student_id, created_at=timezone.now() - datetime.timedelta(days=days_ago),
        )
        return old
    return entry


def _refused(run) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        run()
    return str(caught.value)


def test_orm_cannot_change_or_delete_an_entry(tenant_a):
    entry = _entry(tenant_a, student=tenant_a.students[0])
    entry.actor_name = "someone else"
    assert "append-only" in _refused(entry.save)
    assert "append-only" in _refused(entry.delete)
    entries = AccessEntry.objects.for_institution(tenant_a.institution)
    assert "append-only" in _refused(lambda: entries.update(student_id=None))
    assert "append-only" in _refused(lambda: entries.delete())
    entry.refresh_from_db()
    assert (entry.actor_name, entry.student_id) == (tenant_a.admin.username, tenant_a.students[0].pk)


@pytest.mark.parametrize("statement", [
    "UPDATE audit_accessentry SET actor_name = 'nobody'",
    "UPDATE audit_accessentry SET student_id = NULL",
    "DELETE FROM audit_accessentry",
    "TRUNCATE audit_accessentry",
    # The maintenance setting alone does not open the table: each allows one narrow change only.
    "SET LOCAL dropout.audit_maintenance = 'unlink_student'; UPDATE audit_accessentry SET actor_name = 'x'",
    "SET LOCAL dropout.audit_maintenance = 'unlink_student'; DELETE FROM audit_accessentry",
    "SET LOCAL dropout.audit_maintenance = 'institution_removed'; DELETE FROM audit_accessentry",
    "SET LOCAL dropout.audit_maintenance = 'retention'; TRUNCATE audit_accessentry",
])
def test_raw_sql_cannot_change_or_delete_an_entry(tenant_a, statement):
    _entry(tenant_a, student=tenant_a.students[0])
    before = list(AccessEntry.objects.for_institution(tenant_a.institution).values())

    def run():
        with connection.cursor() as cursor:
            # The row was inserted in this test's transaction: check its foreign key now, or
            # PostgreSQL refuses TRUNCATE for that pending check before our trigger runs.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # The test settings open TRUNCATE for flushing the test database; an application's never.
            cursor.execute("SET LOCAL dropout.audit_test_flush = 'off'")
            cursor.execute(statement)

    message = _refused(run)
    # The trigger refuses; where the application connects as a role without the privilege (the
    # row-level security set-up), PostgreSQL refuses TRUNCATE before the trigger is asked.
    assert "append-only" in message or (statement.endswith("TRUNCATE audit_accessentry")
                                        and "permission denied for table audit_accessentry" in message)
    assert list(AccessEntry.objects.for_institution(tenant_a.institution).values()) == before


def test_redact_student_unlinks_only_that_student_and_records_the_erasure(tenants):
    a, b = tenants
    gone, kept = a.students[0], a.students[1]
    for _ in range(3):
        _entry(a, student=gone)
    _entry(a, student=kept)
    # B's student with the same row position: another institution's entries are never touched.
    _entry(b, student=b.students[0])
    with connection.cursor() as cursor:  # B's entry naming A's student id must survive too
        services.access_record(institution=b.institution, accessor=services.Accessor(name="b"),
                               action=AccessAction.PROFILE_VIEW, student_id=gone.pk)
        del cursor

    assert services.redact_student(a.institution, gone.pk, erased_by=a.admin) == 3

    entries_a = AccessEntry.objects.for_institution(a.institution)
    assert not entries_a.filter(student_id=gone.pk).exists()
    assert entries_a.filter(student_id=kept.pk).count() == 1
    assert entries_a.filter(student_id=None, action=AccessAction.PROFILE_VIEW).count() == 3  # who/when kept
    erasure = entries_a.get(action=AccessAction.STUDENT_ERASED)
    assert (erasure.student_id, erasure.result_count, erasure.actor_name) == (None, 3, a.admin.username)
    assert AccessEntry.objects.for_institution(b.institution).filter(student_id=gone.pk).count() == 1
    assert AccessEntry.objects.for_institution(b.institution).filter(student_id=b.students[0].pk).count() == 1


def test_retention_removes_only_old_entries_of_that_institution(tenants, settings):
    a, b = tenants
    settings.AUDIT_RETENTION_DAYS = 365
    old_a, recent_a = _entry(a, days_ago=400), _entry(a, days_ago=300)
    old_b = _entry(b, days_ago=400)

    removed = services.access_entries_expire(institution=a.institution, before=services.access_retention_cutoff())

    assert removed == 1
    assert set(AccessEntry.objects.for_institution(a.institution).values_list("pk", flat=True)) >= {recent_a.pk}
    assert not AccessEntry.objects.for_institution(a.institution).filter(pk=old_a.pk).exists()
    assert AccessEntry.objects.for_institution(b.institution).filter(pk=old_b.pk).exists()


def test_retention_never_removes_entries_younger_than_30_days(tenant_a):
    entry = _entry(tenant_a, days_ago=20)
    message = _refused(lambda: services.access_entries_expire(
        institution=tenant_a.institution, before=timezone.now() - datetime.timedelta(days=10)))
    assert "at least 30 days" in message
    assert AccessEntry.objects.for_institution(tenant_a.institution).filter(pk=entry.pk).exists()


def test_removing_an_institution_removes_its_entries_and_only_its(tenants):
    a, b = tenants
    _entry(a, student=a.students[0])
    kept = _entry(b, student=b.students[0])
    # Only for an institution that is really gone:
    assert "append-only" in _refused(
        lambda: services.access_entries_remove_for_removed_institution(institution_id=a.institution.pk))

    Institution.objects.filter(pk=a.institution.pk).delete()

    assert not AccessEntry.all_institutions.filter(institution_id=a.institution.pk).exists()
    assert AccessEntry.all_institutions.filter(pk=kept.pk).exists()


def test_daily_retention_runs_a_job_per_institution_with_old_entries_and_records_what_it_removed(
        tenants, settings, django_capture_on_commit_callbacks):
    from audit.tasks import expire_access_log
    from institutions.models import Job, JobKind, JobStatus
    from tests.factories import InstitutionFactory

    a, b = tenants
    settings.AUDIT_RETENTION_DAYS = 90
    old_a = [_entry(a, days_ago=120), _entry(a, days_ago=100)]
    kept_a = _entry(a, days_ago=60)
    old_b = _entry(b, days_ago=91)
    quiet = InstitutionFactory(slug="gamma")

    with django_capture_on_commit_callbacks(execute=True):  # jobs are sent once their rows are committed
        assert expire_access_log() == 2  # A and B; an institution with nothing to remove gets no job

    for tenant, removed in ((a, 2), (b, 1)):
        [job] = Job.objects.for_institution(tenant.institution).filter(kind=JobKind.AUDIT_RETENTION)
        assert (job.status, job.counts, job.result.get("retention_days")) == (
            JobStatus.SUCCEEDED, {"removed": removed}, 90)
    assert not Job.objects.for_institution(quiet).filter(kind=JobKind.AUDIT_RETENTION).exists()
    remaining = set(AccessEntry.all_institutions.values_list("pk", flat=True))
    assert kept_a.pk in remaining and not remaining & {old_b.pk, *(e.pk for e in old_a)}
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_access_log() == 0  # nothing left to remove: no more jobs
