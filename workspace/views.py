"""The advisor's composite pages: dashboard, worklists (flagged list, caseload), student profile (with its
what-if, log-an-intervention and flag forms). Thin: reads come from selectors, writes go through the
services of the app that owns the data."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import ListView, TemplateView

from audit.models import AccessAction
from audit.recording import AccessRecordedPageMixin
from audit.selectors import student_access_entries
from audit.services import list_filters
from institutions.csv_export import formula_safe_writer
from institutions.scoping import current_viewer_restriction
from institutions.view_mixins import InstitutionPageMixin, int_param
from interventions import selectors as intervention_selectors
from interventions import services as intervention_services
from interventions.forms import AlertRaiseForm, CaseloadAssignForm, FlagForm, FlagResolveForm, InterventionForm
from predictions.factor_sentences import institution_factors
from predictions.models import FeedbackReason
from predictions.selectors import (
    latest_prediction_for_student,
    model_version_live,
    prediction_settings_get,
    risk_feedback_for_student,
)
from predictions.services.feedback import FeedbackRefused, risk_feedback_record
from students.models import Student
from students.selectors import student_change_history, student_outcome_counts

from . import selectors
from .forms import RiskFeedbackForm, WorklistFilterForm


class _Echo:
    """A file-like object that hands each CSV line back, so the export streams row by row."""

    def write(self, value: str) -> str:
        return value


def csv_rows_stream(rows):
    writer = formula_safe_writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


class DashboardView(InstitutionPageMixin, TemplateView):
    template_name = "workspace/dashboard.html"
    required_capability = "view_aggregates"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        programs, cohorts = selectors.program_and_cohort_choices(institution=self.institution)
        program = self.request.GET.get("program", "")
        cohort = self.request.GET.get("cohort", "")
        days = int_param(self.request.GET.get("days")) or 14
        filters = selectors.DashboardFilters(
            program=program if program in programs else "", cohort=cohort if cohort in cohorts else "",
            no_contact_days=max(1, min(days, 3650)),
        )
        summary = selectors.dashboard_summary(institution=self.institution, filters=filters)
        if current_viewer_restriction() is not None:
            # The chart counts the whole institution's flagged students; under need-to-know the
            # dashboard shows only figures of the member's own students.
            summary["flagged_over_time"] = []
        context.update(
            counts=student_outcome_counts(institution=self.institution),
            summary=summary, filters=filters, programs=programs, cohorts=cohorts,
            live_model=model_version_live(institution=self.institution),
            newly_flagged=selectors.newly_flagged(institution=self.institution, filters=filters),
            sharp_rises=selectors.sharp_rises(institution=self.institution, filters=filters),
            can_see_students=self.membership.can("view_students"),
            chart_data={
                "histogram": summary["histogram"], "histogramLabels": summary["histogram_labels"],
                "bands": summary["bands"],
                "overTime": [{"date": row["date"].strftime("%Y-%m-%d %H:%M"), "flagged": row["flagged"]}
                             for row in summary["flagged_over_time"]],
            },
        )
        return context


class InstitutionHomeView(DashboardView):
    """``/i/<slug>/``: an advisor's home is their caseload; everyone else lands on the dashboard."""

    def get(self, request, *args, **kwargs):
        if self.membership.can("work_caseload"):
            return redirect("caseload", institution_slug=self.institution.slug)
        return super().get(request, *args, **kwargs)


class WorklistMixin:
    """Shared by the flagged list and the caseload: filters from the query string, SQL paging, CSV."""

    paginate_by = 50
    context_object_name = "students"
    csv_filename = "students.csv"

    def get_filter_form(self) -> WorklistFilterForm:
        if not hasattr(self, "_filter_form"):
            programs, cohorts = selectors.program_and_cohort_choices(institution=self.institution)
            self._filter_form = WorklistFilterForm(
                self.request.GET or None, programs=programs, cohorts=cohorts,
                advisors=intervention_selectors.advisor_choices(institution=self.institution),
                sorts=[(key, label) for key, (label, _order) in selectors.WORKLIST_SORTS.items()],
            )
            self._filter_form.is_valid()
        return self._filter_form

    def get_sort(self) -> str:
        return (getattr(self.get_filter_form(), "cleaned_data", {}) or {}).get("sort") or ""

    def get_filters(self, *, flagged_only: bool) -> selectors.WorklistFilters:
        data = getattr(self.get_filter_form(), "cleaned_data", {}) or {}
        advisor = data.get("advisor") or ""
        return selectors.WorklistFilters(
            band=data.get("band") or "", program=data.get("program") or "", cohort=data.get("cohort") or "",
            advisor_id=int_param(advisor), unassigned=advisor == "none",
            open_intervention=data.get("open_intervention") or "", no_contact_days=data.get("no_contact_days"),
            flagged_only=flagged_only, query=data.get("q") or "",
        )

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "csv":
            return self.export_csv()
        return super().get(request, *args, **kwargs)

    def _exporting(self) -> bool:
        return self.request.method == "GET" and self.request.GET.get("export") == "csv"

    def get_access_action(self) -> str:
        return AccessAction.WORKLIST_EXPORT if self._exporting() else super().get_access_action()

    def access_details(self, response) -> dict:
        if not self._exporting():
            return super().access_details(response)
        filters, _sort = list_filters(self.request.GET)
        return {"filters": {**filters, "list": self.access_action}, "result_count": self._exported_rows}

    def export_csv(self):
        # Built now, inside the request's scope (and its need-to-know restriction, if any): the
        # rows stream after the view has returned.
        students = self.get_queryset()
        self._exported_rows = self.get_queryset().count()  # for the access log entry of this export
        header = ["external_id", "name", "program", "cohort", "risk_percent", "band", "rank", "model_flagged",
                  "open_flag", "advisor", "last_contact", "next_follow_up", "open_intervention"]

        def rows():
            yield header
            for s in students.iterator(chunk_size=2000):
                yield [
                    s.external_id, s.name, s.program, s.cohort,
                    "" if s.risk is None else f"{100 * s.risk:.1f}", s.risk_band or "", s.risk_rank or "",
                    "yes" if s.model_flagged else "no", "yes" if s.has_open_flag else "no",
                    (s.advisor.get_full_name() or s.advisor.username) if s.advisor else "",
                    s.last_contact or "", s.next_follow_up or "", "yes" if s.has_open_intervention else "no",
                ]

        response = StreamingHttpResponse(csv_rows_stream(rows()), content_type="text/csv; charset=utf-8")
        stamp = timezone.localdate().isoformat()
        response["Content-Disposition"] = f'attachment; filename="{self.institution.slug}-{stamp}-{self.csv_filename}"'
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        query.pop("export", None)
        context["filter_form"] = self.get_filter_form()
        context["export_query"] = query.urlencode()
        context["current_sort"] = self.get_sort() or "risk"
        sort_links = {}
        for key in selectors.WORKLIST_SORTS:
            query["sort"] = key
            sort_links[key] = "?" + query.urlencode()
        context["sort_links"] = sort_links
        context["settings"] = prediction_settings_get(institution=self.institution)
        return context


class FlaggedListView(WorklistMixin, AccessRecordedPageMixin, InstitutionPageMixin, ListView):
    """Students flagged by the model or by staff, highest risk first."""

    template_name = "workspace/flagged_list.html"
    required_capability = "view_students"
    access_action = AccessAction.FLAGGED_LIST
    csv_filename = "flagged.csv"

    def get_queryset(self):
        filters = self.get_filters(flagged_only=True)
        students = selectors.worklist_filter(
            selectors.worklist_students(institution=self.institution), filters, institution=self.institution
        )
        return selectors.worklist_sort(students, self.get_sort())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.membership.can("assign_caseloads"):
            context["assign_form"] = CaseloadAssignForm(
                advisor_choices=intervention_selectors.advisor_choices(institution=self.institution)
            )
        return context


class CaseloadView(WorklistMixin, AccessRecordedPageMixin, InstitutionPageMixin, ListView):
    """"My caseload": the signed-in person's students, overdue follow-ups on top."""

    template_name = "workspace/caseload.html"
    required_capability = "view_students"
    access_action = AccessAction.CASELOAD
    csv_filename = "caseload.csv"

    def get_queryset(self):
        return selectors.caseload_students(
            institution=self.institution, advisor=self.request.user,
            filters=self.get_filters(flagged_only=False), sort=self.get_sort(),
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overdue"] = list(
            intervention_selectors.overdue_follow_ups(institution=self.institution, user=self.request.user)[:20]
        )
        context["resolved_flags"] = list(
            intervention_selectors.flags_raised_by_resolved(institution=self.institution, user=self.request.user)[:10]
        )
        context["waiting_alerts"] = intervention_selectors.open_alert_count(
            institution=self.institution, user=self.request.user) if self.membership.can("edit_interventions") else 0
        return context


class StudentObjectMixin:
    def get_student(self) -> Student:
        if not hasattr(self, "_student"):
            self._student = get_object_or_404(self.scoped(Student).select_related("advisor"), pk=self.kwargs["pk"])
        return self._student


class StudentAccessRecordedMixin(AccessRecordedPageMixin):
    """A page about the one student of its URL records that student."""

    def access_details(self, response) -> dict:
        return {"student_id": self.get_student().pk}


class StudentProfileView(StudentObjectMixin, StudentAccessRecordedMixin, InstitutionPageMixin, TemplateView):
    """Risk, why (SHAP factors), what-if, risk history, the data, and the intervention timeline."""

    template_name = "workspace/student_profile.html"
    required_capability = "view_students"
    access_action = AccessAction.PROFILE_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        student = self.get_student()
        latest = latest_prediction_for_student(institution=self.institution, student=student)
        factors = selectors.student_factor_bars(institution_factors(
            institution=self.institution, factors=latest.prediction.factors if latest else []))
        breakdown = selectors.student_risk_breakdown(latest)
        history = selectors.student_risk_history(institution=self.institution, student=student)
        feature_rows = selectors.student_feature_rows(institution=self.institution, student=student)
        types = intervention_selectors.intervention_type_list(institution=self.institution, active_only=True)
        concern_choices = intervention_selectors.concern_type_choices(institution=self.institution)
        context.update(
            student=student, latest=latest, factors=factors, breakdown=breakdown, feature_rows=feature_rows,
            what_if_rows=[row for row in feature_rows if row["definition"].actionable],
            timeline=intervention_selectors.student_timeline(
                institution=self.institution, student=student, user=self.request.user, membership=self.membership
            ),
            flags=intervention_selectors.flag_list(institution=self.institution).filter(student=student),
            student_alerts=intervention_selectors.student_alerts(institution=self.institution, student=student),
            kudos=intervention_selectors.student_kudos(institution=self.institution, student=student),
            alert_form=AlertRaiseForm(concern_choices=concern_choices) if concern_choices else None,
            model_flag_review=intervention_selectors.model_flag_review(
                institution=self.institution, student=student, scored_at=latest.scored_at if latest else None
            ) if latest and latest.flagged else None,
            settings=prediction_settings_get(institution=self.institution),
            can_edit=self.membership.can("edit_interventions"),
            can_edit_all=self.membership.can("view_confidential_notes"),
            today=timezone.localdate(),
            intervention_form=InterventionForm(type_choices=[(t.pk, t.label) for t in types])
            if types else None,
            flag_form=FlagForm(advisor_choices=intervention_selectors.advisor_choices(institution=self.institution)),
            feedback_form=RiskFeedbackForm(reason_choices=FeedbackReason.choices),
            feedback=risk_feedback_for_student(institution=self.institution, student=student),
            # Dates in the page's language (2026-12-03, 03/12/2026); the risk as a number for the chart.
            history_data=[{"date": formats.date_format(timezone.localtime(row["created_at"]), "SHORT_DATE_FORMAT"),
                           "risk": round(100 * row["risk"], 1)} for row in history],
            factor_data=[{"label": f["text"] or f["label"], "contribution": f["contribution"]} for f in factors],
            data_changes=student_change_history(institution=self.institution, student=student),
            # "Who saw this record", for those who may read the access log.
            access_history=student_access_entries(institution=self.institution, student_id=student.pk)
            if self.membership.can("view_access_log") else None,
        )
        return context


class StudentWhatIfView(StudentObjectMixin, StudentAccessRecordedMixin, InstitutionPageMixin, View):
    """``POST {"changes": {"key": value}}`` -> the recomputed risk, as JSON (nothing is stored)."""

    required_capability = "view_students"
    access_action = AccessAction.WHAT_IF

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        try:
            payload = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return JsonResponse({"code": "parse_error", "message": _("Send a JSON object."), "errors": {}}, status=400)
        changes = payload.get("changes") if isinstance(payload, dict) else None
        if not isinstance(changes, dict):
            return JsonResponse({"code": "invalid", "message": _('Send {"changes": {...}}.'), "errors": {}}, status=400)
        try:
            result = selectors.student_what_if(institution=self.institution, student=student, changes=changes)
        except selectors.WhatIfError as exc:
            return JsonResponse({"code": "invalid", "message": str(exc), "errors": {}}, status=400)
        return JsonResponse(result)


class InterventionCreateView(StudentObjectMixin, InstitutionPageMixin, View):
    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        types = intervention_selectors.intervention_type_list(institution=self.institution, active_only=True)
        form = InterventionForm(request.POST, type_choices=[(t.pk, t.label) for t in types])
        profile = reverse("student-detail", args=[self.institution.slug, student.pk])
        if form.is_valid():
            try:
                intervention_services.intervention_create(
                    institution=self.institution, student=student, author=request.user, **form.cleaned_data
                )
            except intervention_services.InterventionRuleError as exc:
                for key, reasons in exc.errors.items():
                    form.add_error(key if key in form.fields else None, reasons)
            else:
                messages.success(request, _("Intervention logged."))
                return HttpResponseRedirect(profile + "#timeline")
        for key, errors in form.errors.items():
            label = form.fields[key].label or key.replace("_", " ") if key in form.fields else ""
            messages.error(request, f"{label.capitalize()}: {' '.join(errors)}" if label else " ".join(errors))
        return HttpResponseRedirect(profile + "#log-intervention")


class FlagCreateView(StudentObjectMixin, InstitutionPageMixin, View):
    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        form = FlagForm(request.POST,
                        advisor_choices=intervention_selectors.advisor_choices(institution=self.institution))
        if form.is_valid():
            try:
                intervention_services.flag_raise(
                    institution=self.institution, student=student, raised_by=request.user,
                    reason=form.cleaned_data["reason"], assigned_to=form.cleaned_data["assigned_to"] or None)
            except intervention_services.InterventionRuleError as exc:
                messages.error(request, " ".join(" ".join(v) for v in exc.errors.values()))
            else:
                messages.success(request, _("Flag raised. You will see here when someone resolves it."))
        elif "assigned_to" in form.errors:
            messages.error(request, _("Route the flag to an advisor or administrator from the list."))
        else:
            messages.error(request, _("Say why this student needs attention."))
        return HttpResponseRedirect(reverse("student-detail", args=[self.institution.slug, student.pk]) + "#flags")


class RiskFeedbackCreateView(StudentObjectMixin, InstitutionPageMixin, View):
    """ "This risk looks wrong": stored with the prediction and model version it is about; no score changes."""

    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        form = RiskFeedbackForm(request.POST, reason_choices=FeedbackReason.choices)
        if not form.is_valid():
            messages.error(request, _("Choose what looks wrong from the list and keep the note under 2,000 characters.")
                           if "note" in form.errors else _("Choose what looks wrong from the list."))
        else:
            try:
                risk_feedback_record(institution=self.institution, student=student, author=request.user,
                                     reason=form.cleaned_data["reason"], note=form.cleaned_data["note"])
            except FeedbackRefused as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, _("Thank you: your feedback is recorded with this risk and its model "
                                            "version. It does not change the score."))
        return HttpResponseRedirect(reverse("student-detail", args=[self.institution.slug, student.pk]) + "#feedback")


class ModelFlagReviewView(StudentObjectMixin, InstitutionPageMixin, View):
    """Staff record what they did about the model's flag; the student leaves the flagged list until rescored."""

    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        form = FlagResolveForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Say what was done about the model's flag."))
        else:
            try:
                intervention_services.flag_review_model_flag(institution=self.institution, student=student,
                                                reviewed_by=request.user, resolution=form.cleaned_data["resolution"])
                messages.success(request, _("Model flag marked as reviewed."))
            except intervention_services.InterventionRuleError as exc:
                messages.error(request, " ".join(" ".join(v) for v in exc.errors.values()))
        return HttpResponseRedirect(reverse("student-detail", args=[self.institution.slug, student.pk]) + "#flags")


