"""Requests for work: a retrain or rescore joins the job of its kind that will cover it.

A job still queued covers any request (it reads the data when it starts; a ``full`` request makes
it full). A running one has already read its data, so a request arriving then is queued as a
follow-up that runs after it (institutions.jobs.job_create): an import that commits during a
rescore is scored by the follow-up, never skipped.
"""

from __future__ import annotations

from institutions.jobs import job_create, job_dispatch
from institutions.models import Institution, Job, JobKind

from ..selectors import model_version_live, prediction_settings_get
from .concern_feature import concern_counts_refresh


def retrain_request(
    *, institution: Institution, created_by=None, triggered_by: str = "user"
) -> tuple[Job, bool]:
    """Queue a retrain, or join the one queued (or the follow-up behind a running one). Returns
    ``(job, created)``."""
    job, created = job_create(
        institution=institution, kind=JobKind.RETRAIN, created_by=created_by, triggered_by=triggered_by,
        join_active=True,
    )
    if created:
        job_dispatch(job)
    return job, created


def rescore_request(
    *, institution: Institution, full: bool = False, created_by=None, triggered_by: str = "user"
) -> tuple[Job, bool]:
    """Queue a rescore (incremental unless ``full``), or join the queued one (made full if asked)."""
    job, created = job_create(
        institution=institution, kind=JobKind.RESCORE, params={"full": bool(full)}, created_by=created_by,
        triggered_by=triggered_by, join_active=True, upgrade={"full": True} if full else None,
    )
    if created:
        job_dispatch(job)
    return job, created


def scheduled_rescore_request(*, institution: Institution) -> tuple[Job, bool]:
    """The scheduled (nightly) rescore: first bring every current student's concern count to
    today's term (when the feature is in use; a new term resets it), so the run scores it."""
    concern_counts_refresh(institution=institution)
    return rescore_request(institution=institution, triggered_by="schedule")


def rescore_after_import(*, institution: Institution, import_job_id: int) -> Job | None:
    """An import committed changes: queue an (incremental) rescore if there is a model to score with."""
    settings = prediction_settings_get(institution=institution)
    if not settings.rescore_after_import or model_version_live(institution=institution) is None:
        return None
    job, _ = rescore_request(institution=institution, triggered_by="import")
    return job
