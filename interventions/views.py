"""Pages of the interventions app: intervention list and edit, caseload assignment, resolving a flag,
intervention types and the effectiveness report. Thin: reads come from selectors, writes go through
services. The composite advisor pages (dashboard, worklists, student profile) are in ``workspace``."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import ListView, TemplateView

from audit.models import AccessAction
from audit.recording import AccessRecordedPageMixin
from institutions.services import institution_set_need_to_know
from institutions.view_mixins import InstitutionPageMixin, int_param
from students.models import Student

from . import selectors, services
from .effectiveness import MIN_SAMPLE, effectiveness_report
from .forms import (
    AccessGrantForm,
    CaseloadAssignForm,
    FlagResolveForm,
    InterventionCloseForm,
    InterventionForm,
    InterventionTypeForm,
)
from .models import Flag, Intervention, InterventionStatus, InterventionType


class CaseloadAssignView(InstitutionPageMixin, View):
    """Administrators assign the students ticked in a list to an advisor (or unassign them)."""

    required_capability = "assign_caseloads"

    def post(self, request, *args, **kwargs):
        form = CaseloadAssignForm(request.POST, advisor_choices=selectors.advisor_choices(institution=self.institution))
        back = request.POST.get("next") or reverse("flagged-list", args=[self.institution.slug])
        if not back.startswith(f"/i/{self.institution.slug}/"):
            back = reverse("flagged-list", args=[self.institution.slug])
        if not form.is_valid():
            messages.error(request, _("Choose an advisor from the list."))
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
            request, _("Assigned %(assigned)s student(s); %(unchanged)s already had that advisor.")
            % {"assigned": result.assigned, "unchanged": result.unchanged}
        )
        return HttpResponseRedirect(back)


class InterventionObjectMixin:
    def get_intervention(self) -> Intervention:
        return get_object_or_404(
            selectors.intervention_list(institution=self.institution, user=self.request.user,
                                        membership=self.membership),
            pk=self.kwargs["pk"],
        )


class InterventionEditView(InterventionObjectMixin, AccessRecordedPageMixin, InstitutionPageMixin, TemplateView):
    template_name = "interventions/intervention_edit.html"
    required_capability = "edit_interventions"
    access_action = AccessAction.INTERVENTION_VIEW

    def access_details(self, response) -> dict:
        intervention = response.context_data["intervention"]
        return {"student_id": intervention.student_id, "object_id": intervention.pk}

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
                    messages.success(request, _("Intervention closed."))
                else:
                    services.intervention_update(institution=self.institution, intervention=intervention,
                                                 data=form.cleaned_data, user=request.user,
                                                 membership=self.membership)
                    messages.success(request, _("Intervention updated."))
                return HttpResponseRedirect(profile + "#timeline")
            except services.InterventionRuleError as exc:
                for key, reasons in exc.errors.items():
                    form.add_error(key if key in form.fields else None, reasons)
        return self.render_to_response(self.get_context_data(intervention=intervention, form=edit, close_form=close),
                                       status=400)


class InterventionListView(AccessRecordedPageMixin, InstitutionPageMixin, ListView):
    """All interventions, filterable by status, overdue, type and author."""

    template_name = "interventions/intervention_list.html"
    required_capability = "view_students"
    access_action = AccessAction.INTERVENTION_LIST
    paginate_by = 50
    context_object_name = "interventions"

    def get_queryset(self):
        get = self.request.GET
        return selectors.intervention_filter(
            selectors.intervention_list(institution=self.institution, user=self.request.user,
                                        membership=self.membership),
            status=get.get("status", "") if get.get("status") in InterventionStatus.values else "",
            overdue=get.get("overdue") == "1", type_id=int_param(get.get("type")),
            author_id=self.request.user.pk if get.get("mine") == "1" else None,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["types"] = selectors.intervention_type_list(institution=self.institution)
        context["today"] = timezone.localdate()
        return context


class FlagResolveView(InstitutionPageMixin, View):
    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        flag = get_object_or_404(self.scoped(Flag), pk=self.kwargs["pk"])
        form = FlagResolveForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Say how the flag was resolved."))
        else:
            try:
                services.flag_resolve(institution=self.institution, flag=flag, resolved_by=request.user,
                                      resolution=form.cleaned_data["resolution"])
                messages.success(request, _("Flag resolved."))
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
        context["types"] = selectors.intervention_type_list(institution=self.institution)
        context.setdefault("form", InterventionTypeForm())
        return context

    def post(self, request, *args, **kwargs):
        toggle = int_param(request.POST.get("toggle"))
        if toggle is not None:
            intervention_type = get_object_or_404(self.scoped(InterventionType), pk=toggle)
            services.intervention_type_save(institution=self.institution, intervention_type=intervention_type,
                                            data={"is_active": not intervention_type.is_active})
            messages.success(request, (_("%(label)s: offered again.") if intervention_type.is_active
                                       else _("%(label)s: no longer offered.")) % {"label": intervention_type.label})
            return redirect("intervention-types", institution_slug=self.institution.slug)
        form = InterventionTypeForm(request.POST)
        if form.is_valid():
            try:
                position = selectors.intervention_type_list(institution=self.institution).count()
                services.intervention_type_save(institution=self.institution, intervention_type=None,
                                                data={**form.cleaned_data, "position": position})
                messages.success(request, _("Added %(label)s.") % {"label": form.cleaned_data["label"]})
                return redirect("intervention-types", institution_slug=self.institution.slug)
            except services.InterventionRuleError as exc:
                form.add_error("key", exc.errors.get("key"))
        return self.render_to_response(self.get_context_data(form=form), status=400)


class EffectivenessView(InstitutionPageMixin, TemplateView):
    template_name = "interventions/effectiveness.html"
    required_capability = "view_aggregates"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["effects"] = effectiveness_report(institution=self.institution)
        context["min_sample"] = MIN_SAMPLE
        return context


class AccessSettingsView(InstitutionPageMixin, TemplateView):
    """Administrators turn need-to-know access on or off and grant advisors single students."""

    template_name = "interventions/access.html"
    required_capability = "manage_users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("grant_form", AccessGrantForm(
            advisor_choices=selectors.advisor_choices(institution=self.institution)))
        context["grants"] = selectors.access_grant_list(institution=self.institution)[:200]
        context["now"] = timezone.now()
        return context

    def post(self, request, *args, **kwargs):
        if request.POST.get("setting") == "need_to_know":
            enabled = request.POST.get("need_to_know") == "on"
            changed = institution_set_need_to_know(institution=self.institution, enabled=enabled, actor=request.user)
            if changed:
                messages.success(request, _("Need-to-know access is on: advisors now see only their caseload, "
                                            "students granted to them and flags routed to them.") if enabled else
                                 _("Need-to-know access is off: advisors see every student again."))
            else:
                messages.info(request, _("Nothing changed: need-to-know access was already on.") if enabled
                              else _("Nothing changed: need-to-know access was already off."))
            return redirect("access-settings", self.institution.slug)
        form = AccessGrantForm(request.POST, advisor_choices=selectors.advisor_choices(institution=self.institution))
        if form.is_valid():
            data = form.cleaned_data
            student = self.scoped(Student).filter(external_id=data["student"].strip()).first()
            if student is None:
                form.add_error("student", _("No student with this id in this institution."))
            else:
                expires_at = None
                if data["expires_on"]:
                    expires_at = timezone.make_aware(
                        datetime.datetime.combine(data["expires_on"], datetime.time.min))
                try:
                    services.access_grant_create(institution=self.institution, student=student, user_id=data["user"],
                                                 reason=data["reason"], expires_at=expires_at,
                                                 granted_by=request.user)
                except services.InterventionRuleError as exc:
                    fields = {"expires_at": "expires_on", "user": "user", "student": "student"}
                    for key, reasons in exc.errors.items():
                        form.add_error(fields.get(key), reasons)
                else:
                    messages.success(request, _("%(student)s is granted.") % {"student": student.display_name})
                    return redirect("access-settings", self.institution.slug)
        return self.render_to_response(self.get_context_data(grant_form=form), status=400)


class AccessGrantRevokeView(InstitutionPageMixin, View):
    required_capability = "manage_users"

    def post(self, request, *args, **kwargs):
        grant = selectors.access_student_access_grant(institution=self.institution, grant_id=kwargs["pk"])
        try:
            services.access_grant_revoke(institution=self.institution, grant=grant, revoked_by=request.user)
            messages.success(request, _("Grant revoked."))
        except services.InterventionRuleError as exc:
            messages.error(request, " ".join(" ".join(v) for v in exc.errors.values()))
        return redirect("access-settings", self.institution.slug)
