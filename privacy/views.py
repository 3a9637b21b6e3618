"""Privacy pages for administrators: retention rules with their preview, subject access export,
erasure with its confirmation, and the list of erasures."""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import ListView, TemplateView, View

from audit.models import AccessAction
from audit.services import access_record_for_request
from institutions.view_mixins import InstitutionPageMixin
from students.selectors import access_student

from .erasure import erasure_plan, student_erase
from .export import export_summary, student_export
from .forms import ErasureConfirmForm, RetentionPolicyForm
from .models import ErasureRecord, ErasureVia
from .retention import (
    PREVIEW_LISTED,
    retention_plan,
    retention_policy_get,
    retention_policy_save,
    retention_run_request,
    retention_runs,
    retention_schedule,
)

PRIVACY_CAPABILITY = "manage_data"  # administrators only


def no_store(response):
    # A student's whole record: never kept by a browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


class RetentionView(InstitutionPageMixin, TemplateView):
    """The rules, what the next run would do (computed as the run computes it), and past runs."""

    template_name = "privacy/retention.html"
    required_capability = PRIVACY_CAPABILITY

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        policy = retention_policy_get(institution=self.institution)
        plan = retention_plan(institution=self.institution, policy=policy)
        context.update(
            policy=policy, form=kwargs.get("form") or RetentionPolicyForm(instance=policy), plan=plan,
            listed=PREVIEW_LISTED, students_listed=plan.students[:PREVIEW_LISTED],
            flags_listed=plan.flags[:PREVIEW_LISTED],
            schedule=retention_schedule(institution=self.institution),
            runs=retention_runs(institution=self.institution), plan_token=_plan_token(plan),
        )
        return context

    def get(self, request, *args, **kwargs):
        return no_store(super().get(request, *args, **kwargs))

    def post(self, request, *args, **kwargs):
        policy = retention_policy_get(institution=self.institution)
        form = RetentionPolicyForm(request.POST, instance=policy)
        if not form.is_valid():
            return no_store(self.render_to_response(self.get_context_data(form=form)))
        retention_policy_save(institution=self.institution, policy=form.save(commit=False), user=request.user)
        messages.success(request, _("Retention rules saved. Below is what the next run would do."))
        return redirect("retention", institution_slug=self.institution.slug)


class RetentionRunView(InstitutionPageMixin, View):
    """POST: run the rules now, doing no more than the preview the person saw (its ids are re-read)."""

    required_capability = PRIVACY_CAPABILITY
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        policy = retention_policy_get(institution=self.institution)
        if policy.pk is None or not policy.has_rules:
            messages.error(request, _("There are no retention rules to run; nothing was done."))
            return redirect("retention", institution_slug=self.institution.slug)
        plan = retention_plan(institution=self.institution, policy=policy)
        if _plan_token(plan) != request.POST.get("plan", ""):
            messages.error(request, _("What the rules would do changed since the page was shown; nothing was done. "
                                      "Check the preview below and run again."))
            return redirect("retention", institution_slug=self.institution.slug)
        job, _created = retention_run_request(institution=self.institution, created_by=request.user, expected=plan)
        messages.info(request, _("Retention run queued as job #%(job)s; its report appears below when it finishes.") % {
            "job": job.pk})
        return redirect("retention", institution_slug=self.institution.slug)


def _plan_token(plan) -> str:
    """A short fingerprint of the previewed ids: the run button carries it back."""
    return hashlib.sha256(json.dumps([plan.student_ids, plan.flag_ids]).encode()).hexdigest()[:32]


class StudentPrivacyMixin(InstitutionPageMixin):
    required_capability = PRIVACY_CAPABILITY

    def get_student(self):
        return access_student(institution=self.institution, student_id=self.kwargs["pk"])

    def record_read(self, action, student) -> None:
        access_record_for_request(self.request, institution=self.institution, action=action, student_id=student.pk)


class StudentExportView(StudentPrivacyMixin, TemplateView):
    """Everything held about the student, readable; the JSON download beside it."""

    template_name = "privacy/student_export.html"

    def get(self, request, *args, **kwargs):
        return no_store(super().get(request, *args, **kwargs))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        student = self.get_student()
        document = student_export(institution=self.institution, student=student, exported_by=self.request.user)
        self.record_read(AccessAction.SUBJECT_EXPORT, student)
        context.update(student=student, document=document, summary=export_summary(document),
                       pretty=json.dumps(document["other_linked_records"], indent=2, cls=DjangoJSONEncoder))
        return context


class StudentExportJsonView(StudentPrivacyMixin, View):
    def get(self, request, *args, **kwargs):
        student = self.get_student()
        document = student_export(institution=self.institution, student=student, exported_by=request.user)
        self.record_read(AccessAction.SUBJECT_EXPORT, student)
        response = HttpResponse(json.dumps(document, indent=2, cls=DjangoJSONEncoder, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="student-{student.pk}-export.json"'
        return no_store(response)


class StudentEraseView(StudentPrivacyMixin, TemplateView):
    """GET: what erasing the student deletes and cleans, counted per kind; POST: erase, once the
    person typed the student's external id."""

    template_name = "privacy/student_erase.html"

    def get(self, request, *args, **kwargs):
        return no_store(super().get(request, *args, **kwargs))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        student = kwargs.get("student") or self.get_student()
        # Recorded first: the entry is one of those the erasure unlinks, so the counts include it.
        self.record_read(AccessAction.ERASURE_REVIEW, student)
        plan = erasure_plan(institution=self.institution, students=[student])
        context.update(student=student, plan=plan, counts=plan.counts,
                       form=kwargs.get("form") or ErasureConfirmForm(external_id=student.external_id))
        return context

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        form = ErasureConfirmForm(request.POST, external_id=student.external_id)
        if not form.is_valid():
            return no_store(self.render_to_response(self.get_context_data(student=student, form=form)))
        record = student_erase(institution=self.institution, student=student,
                               confirm_external_id=form.cleaned_data["confirm_external_id"], erased_by=request.user,
                               via=ErasureVia.PAGE)
        messages.success(request, _("The student was erased. Erasure id: %(id)s.") % {"id": record.erasure_id})
        return redirect("erasure-list", institution_slug=self.institution.slug)


class ErasureListView(InstitutionPageMixin, ListView):
    template_name = "privacy/erasure_list.html"
    required_capability = PRIVACY_CAPABILITY
    paginate_by = 50

    def get_queryset(self):
        return self.scoped(ErasureRecord).select_related("job")
