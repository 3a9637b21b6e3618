"""Celery tasks of students: thin wrappers that run services under the institution's scope."""

from celery import shared_task

from institutions.models import Institution, Job, JobKind
from institutions.task_scope import institution_job_task, institution_task

from .activity import activity_job_run
from .importing.uploads import import_job_run
from .upload_files import import_uploads_expire


@institution_job_task(kind=JobKind.IMPORT, acks_late=True, ignore_result=True)
def run_import(*, institution: Institution, job: Job) -> None:
    """Validate (and, if asked, commit) an uploaded file; progress and report go on the job."""
    import_job_run(institution=institution, job=job)


@institution_job_task(kind=JobKind.ACTIVITY_FEATURES, acks_late=True, ignore_result=True)
def recompute_activity_features(*, institution: Institution, job: Job) -> None:
    """Derive the activity features (students.activity) for every student of the institution."""
    activity_job_run(institution=institution, job=job)


@shared_task(acks_late=True, ignore_result=True)
def expire_import_uploads() -> None:
    """Daily (beat): one clean-up task per institution, each in its own scope."""
    for institution_id in Institution.objects.values_list("pk", flat=True):
        expire_institution_import_uploads.delay(institution_id=institution_id)


@institution_task(acks_late=True, ignore_result=True, time_limit=15 * 60, soft_time_limit=14 * 60)
def expire_institution_import_uploads(*, institution: Institution) -> dict:
    """Remove the institution's uploads never committed within IMPORT_UPLOAD_RETENTION_DAYS."""
    return import_uploads_expire(institution=institution)
