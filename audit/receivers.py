"""Reactions to the lower app's events: an institution removed takes its access log with it; an
import job's report read through the jobs API is recorded."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from institutions.models import Institution, JobKind
from institutions.signals import job_results_read

from .models import AccessAction
from .services import access_entries_remove_for_removed_institution, access_record_for_request, list_filters


@receiver(post_delete, sender=Institution, dispatch_uid="audit_entries_of_removed_institution")
def remove_entries_of_removed_institution(sender, instance, **kwargs):
    # Inside the deletion's transaction, after the institution's row is gone (the foreign key is
    # checked at commit), so the database function can verify that it is.
    access_entries_remove_for_removed_institution(institution_id=instance.pk)


@receiver(job_results_read, dispatch_uid="audit_import_job_results_read")
def record_import_job_results_read(sender, request, institution, jobs, detail, **kwargs):
    # An import job's result holds the report: rejected cell values and the first changes.
    reports = [job for job in jobs if job.get("kind") == JobKind.IMPORT and job.get("result")]
    if not reports:
        return
    if detail:
        details = {"object_id": reports[0].get("id")}
    else:
        filters, _ = list_filters(request.query_params)
        details = {"filters": filters, "result_count": len(reports)}
    access_record_for_request(request, institution=institution, action=AccessAction.IMPORT_JOB_RESULT, **details)
