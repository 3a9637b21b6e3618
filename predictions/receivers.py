"""Reactions of the predictions app to lower apps' events (students never imports predictions)."""

from institutions.models import Institution
from institutions.scoping import institution_scope

from .services.requests import rescore_after_import


def queue_rescore_after_import(sender, *, institution_id: int, job_id: int, **kwargs) -> None:
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        rescore_after_import(institution=institution, import_job_id=job_id)
