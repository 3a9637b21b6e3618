"""Pages of the advisor workspace: dashboard, flagged list, caseload, student profile, interventions,
flags and the effectiveness report. Thin: reads come from selectors, writes go through services."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import ListView, TemplateView

from institutions.csv_export import formula_safe_writer
from institutions.view_mixins import InstitutionPageMixin
from predictions.selectors import latest_prediction_for_student, model_version_live, prediction_settings_get
from students.models import Student
from students.selectors import student_outcome_counts

from . import selectors, services
from .effectiveness import MIN_SAMPLE, effectiveness_report
from .forms import (
    CaseloadAssignForm,
    FlagForm,
    FlagResolveForm,
    InterventionCloseForm,
    InterventionForm,
    InterventionTypeForm,
    WorklistFilterForm,
)
from .models import Flag, Intervention, InterventionStatus, InterventionType

PAGE_SIZE = 50


class _Echo:
    """A file-like object that hands each CSV line back, so the export streams row by row."""

    def write(self, value: str) -> str:
        return value


def csv_rows_stream(rows):
    writer = formula_safe_writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class DashboardView(InstitutionPageMixin, TemplateView):
    template_name = "interventions/dashboard.html"
    required_capability = "view_aggregates"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        services.risk_snapshot_catch_up(institution=self.institution)
        programs, cohorts = selectors.program_and_cohort_choices(institution=self.institution)
        program = self.request.GET.get("program", "")
        cohort = self.request.GET.get("cohort", "")
        days = _int_or_none(self.request.GET.get("days")) or 14
        filters = selectors.DashboardFilters(
            program=program if program in programs else "", cohort=cohort if cohort in cohorts else "",
            no_contact_days=max(1, min(days, 3650)),
        )
        summary = selectors.dashboard_summary(institution=self.institution, filters=filters)
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

    paginate_by = PAGE_SIZE
    context_object_name = "students"
    csv_filename = "students.csv"

    def get_filter_form(self) -> WorklistFilterForm:
        if not hasattr(self, "_filter_form"):
            programs, cohorts = selectors.program_and_cohort_choices(institution=self.institution)
            self._filter_form = WorklistFilterForm(
                self.request.GET or None, programs=programs, cohorts=cohorts,
                advisors=selectors.advisor_choices(institution=self.institution),
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
            advisor_id=_int_or_none(advisor), unassigned=advisor == "none",
            open_intervention=data.get("open_intervention") or "", no_contact_days=data.get("no_contact_days"),
            flagged_only=flagged_only, query=data.get("q") or "",
        )

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "csv":
            return self.export_csv()
        return super().get(request, *args, **kwargs)

    def export_csv(self):
        header = ["external_id", "name", "program", "cohort", "risk_percent", "band", "rank", "model_flagged",
                  "open_flag", "advisor", "last_contact", "next_follow_up", "open_intervention"]

        def rows():
            yield header
            for s in self.get_queryset().iterator(chunk_size=2000):
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


class FlaggedListView(WorklistMixin, InstitutionPageMixin, ListView):
    """Students flagged by the model or by staff, highest risk first."""

    template_name = "interventions/flagged_list.html"
    required_capability = "view_students"
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
                advisor_choices=selectors.advisor_choices(institution=self.institution)
            )
        return context


class CaseloadView(WorklistMixin, InstitutionPageMixin, ListView):
    """"My caseload": the signed-in person's students, overdue follow-ups on top."""

    template_name = "interventions/caseload.html"
    required_capability = "view_students"
    csv_filename = "caseload.csv"

    def get_queryset(self):
        return selectors.caseload_students(
            institution=self.institution, advisor=self.request.user,
            filters=self.get_filters(flagged_only=False), sort=self.get_sort(),
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overdue"] = list(
            selectors.overdue_follow_ups(institution=self.institution, user=self.request.user)[:20]
        )
        context["resolved_flags"] = list(
            selectors.flags_raised_by_resolved(institution=self.institution, user=self.request.user)[:10]
        )
        return context


class CaseloadAssignView(InstitutionPageMixin, View):
    """Administrators assign the students ticked in a list to an advisor (or unassign them)."""

    required_capability = "assign_caseloads"

    def post(self, request, *args, **kwargs):
        form = CaseloadAssignForm(request.POST, advisor_choices=selectors.advisor_choices(institution=self.institution))
        back = request.POST.get("next") or reverse("flagged-list", args=[self.institution.slug])
        if not back.startswith(f"/i/{self.institution.slug}/"):
            back = reverse("flagged-list", args=[self.institution.slug])
        if not form.is_valid():
            messages.error(request, "Choose an advisor from the list.")
            return HttpResponseRedirect(back)
        try:
            result = services.caseload_assign(
                institution=self.institution, student_ids=request.POST.getlist("students"),
                advisor=form.cleaned_data["advisor"], actor=request.user,
            )
        except services.InterventionRuleError as exc:
            messages.error(request, " ".join(" ".join(v) for v in exc.errors.values()))
            return HttpResponseRedirect(back)
        messages.success(
            request, f"Assigned {result.assigned} student(s); {result.unchanged} already had that advisor."
        )
        return HttpResponseRedirect(back)


class StudentObjectMixin:
    def get_student(self) -> Student:
        if not hasattr(self, "_student"):
            self._student = get_object_or_404(self.scoped(Student).select_related("advisor"), pk=self.kwargs["pk"])
        return self._student


class StudentProfileView(StudentObjectMixin, InstitutionPageMixin, TemplateView):
    """Risk, why (SHAP factors), what-if, risk history, the data, and the intervention timeline."""

    template_name = "interventions/student_profile.html"
    required_capability = "view_students"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        student = self.get_student()
        latest = latest_prediction_for_student(institution=self.institution, student=student)
        factors = selectors.student_factor_bars(latest.prediction.factors if latest else [])
        history = selectors.student_risk_history(institution=self.institution, student=student)
        feature_rows = selectors.student_feature_rows(institution=self.institution, student=student)
        types = selectors.intervention_type_list(institution=self.institution, active_only=True)
        context.update(
            student=student, latest=latest, factors=factors, feature_rows=feature_rows,
            what_if_rows=[row for row in feature_rows if row["definition"].actionable],
            timeline=selectors.student_timeline(
                institution=self.institution, student=student, user=self.request.user, membership=self.membership
            ),
            flags=selectors.flag_list(institution=self.institution).filter(student=student),
            model_flag_review=selectors.model_flag_review(
                institution=self.institution, student=student, scored_at=latest.scored_at if latest else None
            ) if latest and latest.flagged else None,
            settings=prediction_settings_get(institution=self.institution),
            can_edit=self.membership.can("edit_interventions"),
            can_edit_all=self.membership.can("view_confidential_notes"),
            today=timezone.localdate(),
            intervention_form=InterventionForm(type_choices=[(t.pk, t.label) for t in types])
            if types else None,
            flag_form=FlagForm(),
            history_data=[{"date": row["created_at"].strftime("%Y-%m-%d"), "risk": round(100 * row["risk"], 1)}
                          for row in history],
            factor_data=[{"label": f["text"] or f["label"], "contribution": f["contribution"]} for f in factors],
        )
        return context

    def get(self, request, *args, **kwargs):
        services.intervention_type_ensure_defaults(institution=self.institution)
        return super().get(request, *args, **kwargs)


class StudentWhatIfView(StudentObjectMixin, InstitutionPageMixin, View):
    """``POST {"changes": {"key": value}}`` -> the recomputed risk, as JSON (nothing is stored)."""

    required_capability = "view_students"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        try:
            payload = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return JsonResponse({"code": "parse_error", "message": "Send a JSON object.", "errors": {}}, status=400)
        changes = payload.get("changes") if isinstance(payload, dict) else None
        if not isinstance(changes, dict):
            return JsonResponse({"code": "invalid", "message": 'Send {"changes": {...}}.', "errors": {}}, status=400)
        try:
            result = selectors.student_what_if(institution=self.institution, student=student, changes=changes)
        except selectors.WhatIfError as exc:
            return JsonResponse({"code": "invalid", "message": str(exc), "errors": {}}, status=400)
        return JsonResponse(result)


class InterventionCreateView(StudentObjectMixin, InstitutionPageMixin, View):
    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        types = selectors.intervention_type_list(institution=self.institution, active_only=True)
        form = InterventionForm(request.POST, type_choices=[(t.pk, t.label) for t in types])
        profile = reverse("student-detail", args=[self.institution.slug, student.pk])
        if form.is_valid():
            try:
                services.intervention_create(
                    institution=self.institution, student=student, author=request.user, **form.cleaned_data
                )
            except services.InterventionRuleError as exc:
                for key, reasons in exc.errors.items():
                    form.add_error(key if key in form.fields else None, reasons)
            else:
                messages.success(request, "Intervention logged.")
                return HttpResponseRedirect(profile + "#timeline")
        for key, errors in form.errors.items():
            label = form.fields[key].label or key.replace("_", " ") if key in form.fields else ""
            messages.error(request, f"{label.capitalize()}: {' '.join(errors)}" if label else " ".join(errors))
        return HttpResponseRedirect(profile + "#log-intervention")


class InterventionObjectMixin:
    def get_intervention(self) -> Intervention:
        return get_object_or_404(
            selectors.intervention_list(institution=self.institution, user=self.request.user,
                                        membership=self.membership),
            pk=self.kwargs["pk"],
        )


class InterventionEditView(InterventionObjectMixin, InstitutionPageMixin, TemplateView):
    template_name = "interventions/intervention_edit.html"
    required_capability = "edit_interventions"

    def dispatch_checks(self, intervention: Intervention) -> None:
        if not services.intervention_can_edit(intervention=intervention, user=self.request.user,
                                              membership=self.membership):
            raise PermissionDenied("Only the author or an administrator can change this intervention.")

    def _forms(self, intervention, data=None):
        types = selectors.intervention_type_list(institution=self.institution)
        choices = [(t.pk, t.label) for t in types if t.is_active or t.pk == intervention.intervention_type_id]
        edit = InterventionForm(data if data and data.get("action") == "edit" else None, type_choices=choices,
                                initial={"intervention_type": intervention.intervention_type_id,
                                         "date": intervention.date, "notes": intervention.visible_notes,
                                         "confidential": intervention.confidential,
                                         "follow_up_date": intervention.follow_up_date})
        close = InterventionCloseForm(data if data and data.get("action") == "close" else None)
        return edit, close

    def get(self, request, *args, **kwargs):
        intervention = self.get_intervention()
        self.dispatch_checks(intervention)
        edit, close = self._forms(intervention)
        return self.render_to_response(self.get_context_data(intervention=intervention, form=edit, close_form=close))

    def post(self, request, *args, **kwargs):
        intervention = self.get_intervention()
        self.dispatch_checks(intervention)
        edit, close = self._forms(intervention, request.POST)
        profile = reverse("student-detail", args=[self.institution.slug, intervention.student_id])
        form = close if request.POST.get("action") == "close" else edit
        if form.is_valid():
            try:
                if form is close:
                    services.intervention_close(institution=self.institution, intervention=intervention,
                                                user=request.user, membership=self.membership, **form.cleaned_data)
                    messages.success(request, "Intervention closed.")
                else:
                    services.intervention_update(institution=self.institution, intervention=intervention,
                                                 data=form.cleaned_data, user=request.user,
                                                 membership=self.membership)
                    messages.success(request, "Intervention updated.")
                return HttpResponseRedirect(profile + "#timeline")
            except services.InterventionRuleError as exc:
                for key, reasons in exc.errors.items():
                    form.add_error(key if key in form.fields else None, reasons)
        return self.render_to_response(self.get_context_data(intervention=intervention, form=edit, close_form=close),
                                       status=400)


class InterventionListView(InstitutionPageMixin, ListView):
    """All interventions, filterable by status, overdue, type and author."""

    template_name = "interventions/intervention_list.html"
    required_capability = "view_students"
    paginate_by = PAGE_SIZE
    context_object_name = "interventions"

    def get_queryset(self):
        get = self.request.GET
        return selectors.intervention_filter(
            selectors.intervention_list(institution=self.institution, user=self.request.user,
                                        membership=self.membership),
            status=get.get("status", "") if get.get("status") in InterventionStatus.values else "",
            overdue=get.get("overdue") == "1", type_id=_int_or_none(get.get("type")),
            author_id=self.request.user.pk if get.get("mine") == "1" else None,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["types"] = selectors.intervention_type_list(institution=self.institution)
        context["today"] = timezone.localdate()
        return context


class FlagCreateView(StudentObjectMixin, InstitutionPageMixin, View):
    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        form = FlagForm(request.POST)
        if form.is_valid():
            services.flag_raise(institution=self.institution, student=student, raised_by=request.user,
                                reason=form.cleaned_data["reason"])
            messages.success(request, "Flag raised. You will see here when someone resolves it.")
        else:
            messages.error(request, "Say why this student needs attention.")
        return HttpResponseRedirect(reverse("student-detail", args=[self.institution.slug, student.pk]) + "#flags")


class ModelFlagReviewView(StudentObjectMixin, InstitutionPageMixin, View):
    """Staff record what they did about the model's flag; the student leaves the flagged list until rescored."""

    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = self.get_student()
        form = FlagResolveForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Say what was done about the model's flag.")
        else:
            try:
                services.flag_review_model_flag(institution=self.institution, student=student,
                                                reviewed_by=request.user, resolution=form.cleaned_data["resolution"])
                messages.success(request, "Model flag marked as reviewed.")
            except services.InterventionRuleError as exc:
                messages.error(request, " ".join(" ".join(v) for v in exc.errors.values()))
        return HttpResponseRedirect(reverse("student-detail", args=[self.institution.slug, student.pk]) + "#flags")


class FlagResolveView(InstitutionPageMixin, View):
    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        flag = get_object_or_404(self.scoped(Flag), pk=self.kwargs["pk"])
        form = FlagResolveForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Say how the flag was resolved.")
        else:
            try:
                services.flag_resolve(institution=self.institution, flag=flag, resolved_by=request.user,
                                      resolution=form.cleaned_data["resolution"])
                messages.success(request, "Flag resolved.")
            except services.InterventionRuleError as exc:
                messages.error(request, " ".join(" ".join(v) for v in exc.errors.values()))
        return HttpResponseRedirect(reverse("student-detail", args=[self.institution.slug, flag.student_id])
                                    + "#flags")


class InterventionTypeListView(InstitutionPageMixin, TemplateView):
    """Administrators configure which intervention types their institution offers."""

    template_name = "interventions/intervention_types.html"
    required_capability = "configure_interventions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        services.intervention_type_ensure_defaults(institution=self.institution)
        context["types"] = selectors.intervention_type_list(institution=self.institution)
        context.setdefault("form", InterventionTypeForm())
        return context

    def post(self, request, *args, **kwargs):
        toggle = _int_or_none(request.POST.get("toggle"))
        if toggle is not None:
            intervention_type = get_object_or_404(self.scoped(InterventionType), pk=toggle)
            services.intervention_type_save(institution=self.institution, intervention_type=intervention_type,
                                            data={"is_active": not intervention_type.is_active})
            messages.success(request, f"{intervention_type.label}: "
                                      f"{'offered again' if intervention_type.is_active else 'no longer offered'}.")
            return redirect("intervention-types", institution_slug=self.institution.slug)
        form = InterventionTypeForm(request.POST)
        if form.is_valid():
            try:
                position = selectors.intervention_type_list(institution=self.institution).count()
                services.intervention_type_save(institution=self.institution, intervention_type=None,
                                                data={**form.cleaned_data, "position": position})
                messages.success(request, f"Added {form.cleaned_data['label']}.")
                return redirect("intervention-types", institution_slug=self.institution.slug)
            except services.InterventionRuleError as exc:
                form.add_error("key", exc.errors.get("key"))
        return self.render_to_response(self.get_context_data(form=form), status=400)


class EffectivenessView(InstitutionPageMixin, TemplateView):
    template_name = "interventions/effectiveness.html"
    required_capability = "view_aggregates"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        services.intervention_type_ensure_defaults(institution=self.institution)
        context["effects"] = effectiveness_report(institution=self.institution)
        context["min_sample"] = MIN_SAMPLE
        return context
