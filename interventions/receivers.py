"""Reactions of the workspace to the predictions app's work (predictions never imports interventions).

After a rescore job succeeds, record what the flagged workload looked like, for "flagged over
time" and "newly flagged since the last run" on the dashboard.
"""

from __future__ import annotations

from institutions.models import Institution, Job, JobStatus
from institutions.scoping import institution_scope

from .services import risk_snapshot_record

RESCORE_TASK = "predictions.tasks.rescore_students"


def snapshot_after_rescore(sender=None, **kwargs) -> None:
    """Celery ``task_success`` receiver: runs in the worker that finished the rescore."""
    if getattr(sender, "name", None) != RESCORE_TASK:
        return
    task_kwargs = getattr(sender.request, "kwargs", None) or {}
    institution = Institution.objects.filter(pk=task_kwargs.get("institution_id")).first()
    if institution is None:
        return
    with institution_scope(institution):
        job = Job.objects.for_institution(institution).filter(
            pk=task_kwargs.get("job_id"), status=JobStatus.SUCCEEDED
        ).first()
        if job is not None:
            risk_snapshot_record(institution=institution, job=job)
