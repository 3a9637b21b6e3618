"""Celery tasks of students: thin wrappers that run services under the institution's scope."""

from celery import shared_task

from institutions.jobs import register_job_runner
from institutions.models import Institution, Job, JobKind
from institutions.scoping import institution_scope

from .activity import activity_job_run
from .importing.uploads import import_job_run


@shared_task(acks_late=True, ignore_result=True)
def run_import(*, institution_id: int, job_id: int) -> None:
    """Validate (and, if asked, commit) an uploaded file; progress and report go on the job."""
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        job = Job.objects.get(pk=job_id)
        if job.is_finished:  # a redelivered message for a job that already ended
            return
        import_job_run(institution=institution, job=job)


register_job_runner(JobKind.IMPORT, run_import)


@shared_task(acks_late=True, ignore_result=True)
def recompute_activity_features(*, institution_id: int, job_id: int) -> None:
    """Derive the activity features (students.activity) for every student of the institution."""
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return
        activity_job_run(institution=institution, job=job)


register_job_runner(JobKind.ACTIVITY_FEATURES, recompute_activity_features)
