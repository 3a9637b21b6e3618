"""Cancelling a job from its page: an administrator stops a queued or running job."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import View

from .jobs import JobNotCancellable, job_cancel
from .models import JobStatus
from .selectors import access_job, job_cancel_capability
from .view_mixins import InstitutionPageMixin


class JobCancelView(InstitutionPageMixin, View):
    """POST only. The capability depends on the job's kind (imports: manage_data; models:
    manage_models), checked after the job is found in this institution (another's is a 404)."""

    required_capability = "manage_data"

    def post(self, request, *args, **kwargs):
        job = access_job(institution=self.institution, job_id=kwargs["pk"])
        if not self.membership.can(job_cancel_capability(job)):
            messages.error(request, "Your role cannot cancel this job.")
            return self._back(request)
        try:
            job = job_cancel(job=job, user=request.user)
        except JobNotCancellable as exc:
            messages.error(request, str(exc))
            return self._back(request)
        if job.status == JobStatus.CANCELLED:
            messages.success(request, f"Job #{job.pk} is cancelled; it had not started, so nothing ran.")
        else:
            messages.success(request, f"Job #{job.pk} will stop at its next step; work already stored is kept "
                                      "(an import being committed writes nothing).")
        return self._back(request)

    def _back(self, request):
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                      require_https=request.is_secure()):
            return redirect(target)
        return redirect("prediction-job-list", institution_slug=self.institution.slug)
