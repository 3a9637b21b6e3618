"""Tasks decorated with institution_task / institution_job_task run in the message's institution."""

from __future__ import annotations

import pytest

from institutions.jobs import job_create
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import current_institution
from institutions.task_scope import institution_task
from institutions.tasks import worker_health_check
from predictions.tasks import rescore_students, retrain_model, scheduled_rescore, scheduled_retrain
from students.tasks import recompute_activity_features, run_import

pytestmark = pytest.mark.django_db

seen: list[tuple[object, object, int]] = []


@institution_task(name="tests.institutions.scope_probe")
def scope_probe(*, institution, marker: int) -> None:
    seen.append((institution, current_institution(), marker))


def test_body_gets_the_messages_institution_and_runs_in_its_scope(tenants):
    _, b = tenants
    seen.clear()
    scope_probe.apply(kwargs={"institution_id": b.institution.pk, "marker": 7})
    assert seen == [(b.institution, b.institution, 7)]
    assert current_institution() is None  # the scope ends with the task


def test_message_for_a_deleted_institution_is_dropped(tenant_a):
    seen.clear()
    result = scope_probe.apply(kwargs={"institution_id": 987654, "marker": 1})
    assert result.successful() and seen == []


def test_job_task_runs_the_claimed_job_once(tenant_a):
    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    worker_health_check(institution_id=tenant_a.institution.pk, job_id=job.pk)
    worker_health_check(institution_id=tenant_a.institution.pk, job_id=job.pk)  # a redelivery of finished work
    job = Job.objects.for_institution(tenant_a.institution).get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1


def test_message_naming_another_institutions_job_does_nothing(tenants):
    a, b = tenants
    job, _ = job_create(institution=a.institution, kind=JobKind.HEALTH_CHECK)
    worker_health_check(institution_id=b.institution.pk, job_id=job.pk)
    job = Job.objects.for_institution(a.institution).get(pk=job.pk)
    assert job.status == JobStatus.QUEUED and job.attempts == 0


def test_decorated_tasks_keep_their_names_options_and_message_format():
    # Queued messages name the task and carry only keyword ids: both must survive the decorator.
    assert [task.name for task in (retrain_model, rescore_students, scheduled_rescore, scheduled_retrain,
                                   run_import, recompute_activity_features, worker_health_check)] == [
        "predictions.tasks.retrain_model", "predictions.tasks.rescore_students",
        "predictions.tasks.scheduled_rescore", "predictions.tasks.scheduled_retrain",
        "students.tasks.run_import", "students.tasks.recompute_activity_features",
        "institutions.tasks.worker_health_check",
    ]
    assert rescore_students.acks_late and rescore_students.time_limit == 60 * 60
    assert rescore_students.soft_time_limit == 60 * 60 - 60
    assert retrain_model.time_limit == 2 * 60 * 60
    with pytest.raises(TypeError):
        rescore_students.s(1, 2).apply()  # positional ids were never the format
    with pytest.raises(TypeError):
        rescore_students.s(institution_id=1).apply()  # a job task needs its job id
