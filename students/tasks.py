"""Celery tasks of students: thin wrappers that run services under the institution's scope."""

from institutions.models import Institution, Job, JobKind
from institutions.task_scope import institution_job_task

from .activity import activity_job_run
from .importing.uploads import import_job_run


@institution_job_task(kind=JobKind.IMPORT, acks_late=True, ignore_result=True)
def run_import(*, institution: Institution, job: Job) -> None:
    """Validate (and, if asked, commit) an uploaded file; progress and report go on the job."""
    import_job_run(institution=institution, job=job)


@institution_job_task(kind=JobKind.ACTIVITY_FEATURES, acks_late=True, ignore_result=True)
def recompute_activity_features(*, institution: Institution, job: Job) -> None:
    """Derive the activity features (students.activity) for every student of the institution."""
    activity_job_run(institution=institution, job=job)
