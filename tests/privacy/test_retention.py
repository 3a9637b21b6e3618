"""Retention rules: the page previews exactly what the run then does, a preview changes nothing,
and one institution's rules never touch another's students or flags."""

from __future__ import annotations

import datetime
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from institutions.models import Job, JobKind, JobStatus
from interventions.models import Flag
from privacy.models import ErasureRecord, RetentionPolicy
from privacy.retention import latest_term_end, parse_term_end_dates, periodic_task_name, retention_plan
from privacy.tasks import scheduled_retention
from students.models import Outcome, Student

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def days_ago(n: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=n)


def left_students(tenant):
    """Students who left long ago, recently, without a date, and one still enrolled, plus flags."""
    students = Student.objects.for_institution(tenant.institution)
    s = tenant.students
    students.filter(pk=s[0].pk).update(outcome=Outcome.GRADUATED, outcome_date=days_ago(400))
    students.filter(pk=s[1].pk).update(outcome=Outcome.DROPPED_OUT, outcome_date=days_ago(366))
    students.filter(pk=s[2].pk).update(outcome=Outcome.TRANSFERRED, outcome_date=days_ago(100))
    students.filter(pk=s[3].pk).update(outcome=Outcome.GRADUATED, outcome_date=None)
    students.filter(pk=s[4].pk).update(outcome=Outcome.ENROLLED, outcome_date=days_ago(900))
    flags = Flag.objects.for_institution(tenant.institution)
    old = flags.create(student=s[4], reason="old flag")
    flags.filter(pk=old.pk).update(raised_at=timezone.now() - datetime.timedelta(days=90))
    fresh = flags.create(student=s[5], reason="fresh flag")
    on_erased = flags.create(student=s[0], reason="goes with the student")
    flags.filter(pk=on_erased.pk).update(raised_at=timezone.now() - datetime.timedelta(days=90))
    return {"erased": {s[0].pk, s[1].pk}, "old_flag": old.pk, "fresh_flag": fresh.pk}


def set_rules(client, tenant, **fields):
    client.force_login(tenant.admin)
    data = {"erase_after_days": "", "close_flags_after_days": "", "term_end_dates_text": "", "run_hour": "3", **fields}
    return client.post(reverse("retention", args=[tenant.institution.slug]), data)


def state(institution):
    return (sorted(Student.objects.for_institution(institution).values_list("pk", "name", "outcome")),
            sorted(Flag.objects.for_institution(institution).values_list("pk", "resolved_at", "resolution")),
            ErasureRecord.objects.for_institution(institution).count(),
            Job.objects.for_institution(institution).count())


def test_the_preview_lists_exactly_what_the_run_then_does_and_the_job_records_it(
        tenants, client, django_capture_on_commit_callbacks):
    a, b = tenants
    expected = left_students(a)
    left_students(b)
    b_before = state(b.institution)
    response = set_rules(client, a, erase_after_days="365", close_flags_after_days="30")
    assert response.status_code == 302
    page = client.get(reverse("retention", args=[a.institution.slug]))
    assert page["Cache-Control"].startswith("no-store")
    plan = page.context["plan"]
    assert set(plan.student_ids) == expected["erased"]
    assert plan.flag_ids == [expected["old_flag"]]
    assert plan.students_without_date == 2  # s[3], and s[5] who dropped out (fixture) with no date
    html = page.content.decode()
    assert html.count('class="retention-student"') == 2 and html.count('class="retention-flag"') == 1
    previewed_students, previewed_flags = set(plan.student_ids), set(plan.flag_ids)
    before_a = state(a.institution)
    assert state(a.institution) == before_a  # showing the preview wrote nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("retention-run", args=[a.institution.slug]),
                               {"plan": page.context["plan_token"]})
    assert response.status_code == 302
    job = Job.objects.for_institution(a.institution).get(kind=JobKind.RETENTION)
    assert job.status == JobStatus.SUCCEEDED and job.created_by == a.admin
    remaining = set(Student.objects.for_institution(a.institution).values_list("pk", flat=True))
    gone = {s.pk for s in a.students} - remaining
    assert gone == previewed_students
    closed = set(Flag.objects.for_institution(a.institution).filter(resolved_at__isnull=False).values_list(
        "pk", flat=True))
    assert closed == previewed_flags
    assert Flag.objects.for_institution(a.institution).get(pk=expected["old_flag"]).resolution.startswith(
        f"Closed by the retention rules (job #{job.pk})")
    records = ErasureRecord.objects.for_institution(a.institution)
    assert sorted(str(r.erasure_id) for r in records) == sorted(job.result["erasure_ids"])
    assert all(r.job_id == job.pk and r.via == "retention" for r in records)
    assert job.counts == {"students_erased": 2, "flags_closed": 1}
    assert job.result["rules"]["set_by"] == a.admin.username
    # The report names no one: only erasure ids and flag ids.
    assert not any(s.external_id in json.dumps(job.result) for s in a.students if s.pk in gone)
    # Nothing of B moved.
    assert state(b.institution) == b_before
    # The next preview is empty: the run did it all.
    assert client.get(reverse("retention", args=[a.institution.slug])).context["plan"].is_empty


def test_a_run_from_a_stale_preview_does_nothing_and_says_so(tenants, client, django_capture_on_commit_callbacks):
    a, _b = tenants
    left_students(a)
    set_rules(client, a, erase_after_days="365")
    token = client.get(reverse("retention", args=[a.institution.slug])).context["plan_token"]
    Student.objects.for_institution(a.institution).filter(pk=a.students[2].pk).update(outcome_date=days_ago(500))
    before = state(a.institution)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("retention-run", args=[a.institution.slug]), {"plan": token}, follow=True)
    assert b"changed since the page was shown; nothing was done" in response.content
    assert state(a.institution) == before


def test_the_run_never_does_more_than_the_preview_it_was_started_from(tenants, client,
                                                                      django_capture_on_commit_callbacks):
    from privacy.retention import retention_policy_get, retention_run_request

    a, _b = tenants
    left_students(a)
    set_rules(client, a, erase_after_days="365")
    policy = retention_policy_get(institution=a.institution)
    shown = retention_plan(institution=a.institution, policy=policy)
    # A student becomes due after the preview was shown: the run started from it leaves them.
    Student.objects.for_institution(a.institution).filter(pk=a.students[2].pk).update(outcome_date=days_ago(500))
    with django_capture_on_commit_callbacks(execute=True):
        job, _ = retention_run_request(institution=a.institution, created_by=a.admin, expected=shown)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert Student.objects.for_institution(a.institution).filter(pk=a.students[2].pk).exists()
    assert job.counts["students_erased"] == len(shown.student_ids)


def test_the_daily_run_is_a_beat_entry_per_institution_and_runs_as_a_job(tenants, client,
                                                                         django_capture_on_commit_callbacks):
    a, b = tenants
    left_students(a)
    left_students(b)
    b_before = state(b.institution)
    set_rules(client, a, erase_after_days="365", enabled="on", run_hour="4")
    entry = PeriodicTask.objects.get(name=periodic_task_name(a.institution))
    assert entry.task == "privacy.tasks.scheduled_retention" and entry.crontab.hour == "4"
    assert str(entry.crontab.timezone) == a.institution.timezone
    assert json.loads(entry.kwargs) == {"institution_id": a.institution.pk}
    assert not PeriodicTask.objects.filter(name=periodic_task_name(b.institution)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        scheduled_retention.apply(kwargs=json.loads(entry.kwargs))
    job = Job.objects.for_institution(a.institution).get(kind=JobKind.RETENTION)
    assert job.triggered_by == "schedule" and job.status == JobStatus.SUCCEEDED
    assert job.counts["students_erased"] == 2
    assert state(b.institution) == b_before
    # Turning the daily run off removes the entry.
    set_rules(client, a, erase_after_days="365", run_hour="4")
    assert not PeriodicTask.objects.filter(name=periodic_task_name(a.institution)).exists()


@pytest.mark.parametrize(("fields", "message"), [
    ({"erase_after_days": "0"}, b"greater than or equal to 1"),
    ({"erase_after_days": "-3"}, b"greater than or equal to"),
    ({"erase_after_days": "ten"}, b"Enter a whole number"),
    ({"close_flags_after_days": "99999999"}, b"less than or equal to 36500"),
    ({"term_end_dates_text": "13-01"}, b"is not a day of the year as MM-DD"),
    ({"term_end_dates_text": "7-5"}, b"two digits each"),
    ({"enabled": "on"}, b"Set at least one rule before turning the daily run on"),
    ({"run_hour": "24", "erase_after_days": "5"}, b"less than or equal to 23"),
])
def test_bad_rules_are_refused_with_a_specific_message_and_change_nothing(tenants, client, fields, message):
    a, _b = tenants
    response = set_rules(client, a, **fields)
    assert response.status_code == 200 and message in response.content
    assert not RetentionPolicy.objects.for_institution(a.institution).exists()
    assert not PeriodicTask.objects.filter(name=periodic_task_name(a.institution)).exists()


def test_term_end_closes_flags_raised_before_the_last_term_ended():
    assert parse_term_end_dates("07-15, 01-31 ,01-31") == ["01-31", "07-15"]
    assert latest_term_end(["01-31", "07-15"], datetime.date(2026, 3, 1)) == datetime.date(2026, 1, 31)
    assert latest_term_end(["01-31", "07-15"], datetime.date(2026, 1, 20)) == datetime.date(2025, 7, 15)
    assert latest_term_end(["01-31"], datetime.date(2026, 1, 31)) == datetime.date(2025, 1, 31)
    assert latest_term_end(["02-29"], datetime.date(2026, 3, 1)) == datetime.date(2026, 2, 28)
    assert latest_term_end([], datetime.date(2026, 3, 1)) is None


def test_a_term_end_rule_closes_older_open_flags_only(tenants, client, django_capture_on_commit_callbacks):
    a, _b = tenants
    flags = Flag.objects.for_institution(a.institution)
    before_term = flags.create(student=a.students[0], reason="raised before the term ended")
    flags.filter(pk=before_term.pk).update(raised_at=timezone.now() - datetime.timedelta(days=40))
    after_term = flags.create(student=a.students[1], reason="raised this week")
    term_end = TODAY - datetime.timedelta(days=10)
    set_rules(client, a, term_end_dates_text=term_end.strftime("%m-%d"))
    page = client.get(reverse("retention", args=[a.institution.slug]))
    assert page.context["plan"].flag_ids == [before_term.pk]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("retention-run", args=[a.institution.slug]), {"plan": page.context["plan_token"]})
    assert flags.get(pk=before_term.pk).resolved_at is not None
    assert flags.get(pk=after_term.pk).resolved_at is None
    assert Student.objects.for_institution(a.institution).count() == len(a.students)


def test_only_administrators_see_the_retention_page_and_other_institutions_get_404(tenants, client):
    a, b = tenants
    for user in (a.advisor, a.viewer):
        client.force_login(user)
        assert client.get(reverse("retention", args=[a.institution.slug])).status_code == 403
        assert client.post(reverse("retention-run", args=[a.institution.slug]), {"plan": "x"}).status_code == 403
    client.force_login(b.admin)
    assert client.get(reverse("retention", args=[a.institution.slug])).status_code == 404
    assert client.post(reverse("retention", args=[a.institution.slug]), {"erase_after_days": "1"}).status_code == 404
    assert client.post(reverse("retention-run", args=[a.institution.slug]), {"plan": "x"}).status_code == 404
    assert not RetentionPolicy.objects.for_institution(a.institution).exists()


def test_a_run_cancelled_midway_keeps_the_report_of_what_it_did(tenants, client):
    from institutions.jobs import job_create
    from privacy.tasks import run_retention

    a, _b = tenants
    expected = left_students(a)
    set_rules(client, a, erase_after_days="365")
    job, _ = job_create(institution=a.institution, kind=JobKind.RETENTION, created_by=a.admin)
    # An administrator's cancel reaches the run as it starts: it stops after its first erasure.
    Job.objects.for_institution(a.institution).filter(pk=job.pk).update(cancel_requested_at=timezone.now(),
                                                                      cancelled_by=a.admin)
    run_retention.apply(kwargs={"institution_id": a.institution.pk, "job_id": job.pk})
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and "Cancelled by alpha-admin" in job.error
    records = ErasureRecord.objects.for_institution(a.institution)
    assert job.counts == {"students_erased": 1, "flags_closed": 0}
    assert job.result["erasure_ids"] == [str(records.get().erasure_id)] and records.get().job_id == job.pk
    remaining = set(Student.objects.for_institution(a.institution).values_list("pk", flat=True))
    assert len(expected["erased"] - remaining) == 1
