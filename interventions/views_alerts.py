"""Pages for alerts and referrals: my alerts, an office's queue, the unassigned queue, one alert with its
history and actions, raising one from a student's profile, and the administrators' offices and routing
rules. Thin: reads come from selectors, writes go through :mod:`interventions.alerts`."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import ListView, TemplateView

from audit.models import AccessAction
from audit.recording import AccessRecordedPageMixin
from courses.models import ConcernType
from institutions.access import object_for_input_id
from institutions.view_mixins import InstitutionPageMixin, int_param
from students.models import Student

from . import alerts, selectors
from .forms import (
    AlertCloseForm,
    AlertContactForm,
    AlertNoteForm,
    AlertRaiseForm,
    AlertReferForm,
    AlertRuleForm,
    AlertRulePreviewForm,
    OfficeForm,
    OfficeMemberForm,
)
from .models import AlertStatus, RouteTarget
from .services import InterventionRuleError


def _errors_text(exc: InterventionRuleError) -> str:
    return " ".join(" ".join(reasons) for reasons in exc.errors.values())


def _add_errors(form, exc: InterventionRuleError) -> None:
    for key, reasons in exc.errors.items():
        form.add_error(key if key in form.fields else None, reasons)


class AlertListView(AccessRecordedPageMixin, InstitutionPageMixin, ListView):
    """My alerts (assigned to me or to my offices), an office's queue, or the unassigned queue."""

    access_action = AccessAction.ALERT_LIST

    template_name = "interventions/alert_list.html"
    required_capability = "edit_interventions"
    paginate_by = 50
    context_object_name = "alerts"
    queue = "mine"

    def base_queryset(self):
        return selectors.my_alerts(institution=self.institution, user=self.request.user)

    def get_queryset(self):
        get = self.request.GET
        status = get.get("status", "open")
        if status not in selectors.ALERT_STATUS_FILTERS:
            status = "open"
        self.status = status
        return selectors.alert_filter(self.base_queryset(), status=status,
                                      concern_type_id=int_param(get.get("type")))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            queue=self.queue, status=self.status, statuses=AlertStatus.choices,
            types=selectors.concern_type_choices(institution=self.institution, active_only=False),
            type_id=int_param(self.request.GET.get("type")),
            my_offices=selectors.my_offices(institution=self.institution, user=self.request.user),
            is_admin=self.membership.can(alerts.ADMIN_CAPABILITY),
            unassigned_count=selectors.unassigned_alerts(institution=self.institution)
            .exclude(status=AlertStatus.CLOSED).count() if self.membership.can(alerts.ADMIN_CAPABILITY) else None,
        )
        return context


class OfficeAlertListView(AlertListView):
    queue = "office"

    def base_queryset(self):
        self.office = selectors.access_office(institution=self.institution, office_id=self.kwargs["pk"])
        if not self.membership.can(alerts.ADMIN_CAPABILITY) and self.office.pk not in alerts.my_office_ids(
                institution=self.institution, user=self.request.user):
            raise PermissionDenied(_("Only the office's members and administrators see its queue."))
        return selectors.office_alerts(institution=self.institution, office=self.office)

    def get_context_data(self, **kwargs):
        return super().get_context_data(office=self.office, **kwargs)


class UnassignedAlertListView(AlertListView):
    queue = "unassigned"
    required_capability = alerts.ADMIN_CAPABILITY

    def base_queryset(self):
        return selectors.unassigned_alerts(institution=self.institution)


class AllAlertListView(AlertListView):
    """Administrators: every alert of the institution, wherever it is."""

    queue = "all"
    required_capability = alerts.ADMIN_CAPABILITY

    def base_queryset(self):
        return selectors.alert_list(institution=self.institution)


class AlertDetailView(AccessRecordedPageMixin, InstitutionPageMixin, TemplateView):
    """One alert: what was raised, where it went and everything since; the actions for who may act."""

    access_action = AccessAction.ALERT_VIEW

    def access_details(self, response) -> dict:
        alert = response.context_data["alert"]
        return {"student_id": alert.student_id, "object_id": alert.pk}

    template_name = "interventions/alert_detail.html"
    required_capability = "view_students"
    write_capability = "edit_interventions"
    ACTIONS = ("acknowledge", "contact", "refer", "note", "close")

    def get_alert(self):
        return selectors.access_alert(institution=self.institution, alert_id=self.kwargs["pk"])

    def _forms(self, data=None, action=None):
        def bound(name):
            return data if action == name else None

        return {
            "acknowledge_form": AlertNoteForm(bound("acknowledge"), prefix="ack"),
            "contact_form": AlertContactForm(bound("contact"), prefix="contact"),
            "refer_form": AlertReferForm(
                bound("refer"), prefix="refer",
                office_choices=[(o.pk, o.name) for o in selectors.office_list(institution=self.institution,
                                                                              active_only=True)],
                user_choices=selectors.advisor_choices(institution=self.institution)),
            "note_form": AlertNoteForm(bound("note"), prefix="note"),
            "close_form": AlertCloseForm(bound("close"), prefix="close"),
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        alert = kwargs.get("alert") or self.get_alert()
        context.setdefault("forms", self._forms())
        context.update(
            alert=alert, events=selectors.alert_events(institution=self.institution, alert=alert),
            can_act=alerts.alert_can_act(alert=alert, user=self.request.user, membership=self.membership),
        )
        return context

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(alert=self.get_alert()))

    def post(self, request, *args, **kwargs):
        alert = self.get_alert()
        action = request.POST.get("action")
        if action not in self.ACTIONS:
            messages.error(request, _("Choose what to do with the alert."))
            return redirect("alert-detail", self.institution.slug, alert.pk)
        forms = self._forms(request.POST, action)
        form = forms[{"acknowledge": "acknowledge_form", "contact": "contact_form", "refer": "refer_form",
                      "note": "note_form", "close": "close_form"}[action]]
        if form.is_valid():
            data = form.cleaned_data
            common = {"institution": self.institution, "alert": alert, "user": request.user,
                      "membership": self.membership}
            try:
                if action == "acknowledge":
                    alerts.alert_acknowledge(**common, note=data["note"])
                    done = _("Acknowledged: the alert is yours to work.")
                elif action == "contact":
                    alerts.alert_record_contact(**common, note=data["note"])
                    done = _("Contact recorded.")
                elif action == "refer":
                    alerts.alert_refer(**common, to_user_id=data["to_user"] or None,
                                       to_office_id=data["to_office"] or None, note=data["note"])
                    done = _("Referred: they have been told.")
                elif action == "note":
                    alerts.alert_add_note(**common, note=data["note"])
                    done = _("Note added.")
                else:
                    alerts.alert_close(**common, outcome=data["outcome"], notes=data["notes"])
                    done = (_("Alert closed. The instructor who raised it is emailed that it was handled.")
                            if alert.raised_by_instructor_id else _("Alert closed."))
            except InterventionRuleError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, done)
                # Under need-to-know access a referred or closed alert may leave the actor's sight.
                if selectors.alert_list(institution=self.institution).filter(pk=alert.pk).exists():
                    return redirect("alert-detail", self.institution.slug, alert.pk)
                return redirect("alert-list", self.institution.slug)
        problems = [str(reason) for reasons in form.errors.values() for reason in reasons]
        context = self.get_context_data(alert=alert, forms=forms, failed_action=action, problems=problems)
        return self.render_to_response(context, status=400)


class AlertRaiseView(InstitutionPageMixin, View):
    """``POST`` from a student's profile: raise an alert about them."""

    required_capability = "edit_interventions"

    def post(self, request, *args, **kwargs):
        student = object_for_input_id(self.scoped(Student), kwargs["pk"])
        profile = reverse("student-detail", args=[self.institution.slug, student.pk])
        form = AlertRaiseForm(request.POST,
                              concern_choices=selectors.concern_type_choices(institution=self.institution))
        if not form.is_valid():
            messages.error(request, _("Choose a concern and say what you noticed."))
            return HttpResponseRedirect(profile + "#alerts")
        try:
            alert = alerts.alert_raise_by_staff(institution=self.institution, student=student,
                                                concern_type_id=form.cleaned_data["concern_type"],
                                                comment=form.cleaned_data["comment"], user=request.user)
        except InterventionRuleError as exc:
            messages.error(request, _errors_text(exc))
            return HttpResponseRedirect(profile + "#alerts")
        where = (alert.assigned_user and (alert.assigned_user.get_full_name() or alert.assigned_user.username)) or \
            (alert.assigned_office and alert.assigned_office.name)
        if where:
            messages.success(request, _("Alert raised and sent to %(where)s.") % {"where": where})
        else:
            messages.success(request, _("Alert raised and sent to the administrators' unassigned queue."))
        return HttpResponseRedirect(profile + "#alerts")


# --- administration: offices and routing rules -----------------------------------------------

class OfficeListView(InstitutionPageMixin, TemplateView):
    template_name = "interventions/office_list.html"
    required_capability = alerts.ADMIN_CAPABILITY

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["offices"] = selectors.office_list(institution=self.institution)
        context.setdefault("form", OfficeForm())
        return context

    def post(self, request, *args, **kwargs):
        form = OfficeForm(request.POST)
        if form.is_valid():
            try:
                office = alerts.office_save(institution=self.institution, office=None, data=form.cleaned_data)
            except InterventionRuleError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Office %(name)s added. Add its members next.") % {"name": office.name})
                return redirect("office-detail", self.institution.slug, office.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class OfficeDetailView(InstitutionPageMixin, TemplateView):
    template_name = "interventions/office_detail.html"
    required_capability = alerts.ADMIN_CAPABILITY

    def get_office(self):
        return selectors.access_office(institution=self.institution, office_id=self.kwargs["pk"])

    def _member_form(self, data=None):
        return OfficeMemberForm(data, user_choices=selectors.advisor_choices(institution=self.institution))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        office = context.get("office") or self.get_office()
        context.update(office=office, members=selectors.office_members(institution=self.institution, office=office))
        context.setdefault("form", OfficeForm(initial={"name": office.name, "email": office.email,
                                                       "description": office.description}))
        context.setdefault("member_form", self._member_form())
        return context

    def post(self, request, *args, **kwargs):
        office = self.get_office()
        action = request.POST.get("action")
        try:
            if action == "remove_member":
                alerts.office_member_remove(institution=self.institution, office=office,
                                            user_id=request.POST.get("user"))
                messages.success(request, _("Member removed from the office."))
            elif action == "toggle":
                alerts.office_save(institution=self.institution, office=office,
                                   data={"is_active": not office.is_active})
                if office.is_active:
                    text = _("%(name)s is active: rules may send it alerts.")
                else:
                    text = _("%(name)s is inactive: rules pass over it and alerts go to the next match.")
                messages.success(request, text % {"name": office.name})
            elif action == "add_member":
                form = self._member_form(request.POST)
                if not form.is_valid():
                    return self.render_to_response(self.get_context_data(office=office, member_form=form),
                                                   status=400)
                alerts.office_member_add(institution=self.institution, office=office,
                                         user_id=form.cleaned_data["user"])
                messages.success(request, _("Member added: they now share the office's queue."))
            else:
                form = OfficeForm(request.POST)
                if not form.is_valid():
                    return self.render_to_response(self.get_context_data(office=office, form=form), status=400)
                alerts.office_save(institution=self.institution, office=office, data=form.cleaned_data)
                messages.success(request, _("Office saved."))
        except InterventionRuleError as exc:
            messages.error(request, _errors_text(exc))
            return self.render_to_response(self.get_context_data(office=office), status=400)
        return redirect("office-detail", self.institution.slug, office.pk)


class AlertRuleListView(InstitutionPageMixin, TemplateView):
    """The ordered routing rules: add, reorder, switch off, delete, and try where an alert would go."""

    template_name = "interventions/alert_rules.html"
    required_capability = alerts.ADMIN_CAPABILITY

    def _choices(self):
        return {
            "concern_choices": selectors.concern_type_choices(institution=self.institution, active_only=False),
            "user_choices": selectors.advisor_choices(institution=self.institution),
            "office_choices": [(o.pk, o.name) for o in selectors.office_list(institution=self.institution,
                                                                             active_only=True)],
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        choices = self._choices()
        context["rules"] = selectors.alert_rule_list(institution=self.institution)
        context.setdefault("form", AlertRuleForm(**choices))
        context.setdefault("preview_form", AlertRulePreviewForm(concern_choices=choices["concern_choices"]))
        return context

    def get(self, request, *args, **kwargs):
        context = {}
        if "preview" in request.GET:
            form = AlertRulePreviewForm(request.GET, concern_choices=self._choices()["concern_choices"])
            context["preview_form"] = form
            if form.is_valid():
                student = self.scoped(Student).filter(external_id=form.cleaned_data["student"].strip()).first()
                concern = ConcernType.objects.for_institution(self.institution).filter(
                    pk=int(form.cleaned_data["concern_type"])).first()
                if student is None:
                    form.add_error("student", _("No student with this id in this institution."))
                else:
                    context["preview"] = alerts.alert_route_decide(institution=self.institution, student=student,
                                                                   concern_type=concern)
                    context["preview_student"] = student
        return self.render_to_response(self.get_context_data(**context))

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action", "add")
        if action in ("up", "down", "delete", "toggle"):
            rule = selectors.access_alert_rule(institution=self.institution, rule_id=request.POST.get("rule"))
            if action == "delete":
                alerts.alert_rule_delete(institution=self.institution, rule=rule)
                messages.success(request, _("Rule deleted."))
            elif action == "toggle":
                try:
                    alerts.alert_rule_save(institution=self.institution, rule=rule, data={
                        "concern_type": rule.concern_type_id, "program": rule.program, "target": rule.target,
                        "user": rule.user_id, "office": rule.office_id, "is_active": not rule.is_active})
                except InterventionRuleError as exc:
                    messages.error(request, _("The rule cannot be switched on: %(reason)s")
                                   % {"reason": _errors_text(exc)})
                else:
                    messages.success(request, _("Rule switched on.") if rule.is_active else _("Rule switched off."))
            else:
                alerts.alert_rule_move(institution=self.institution, rule=rule, up=action == "up")
                messages.success(request, _("Order changed."))
            return redirect("alert-rules", self.institution.slug)
        form = AlertRuleForm(request.POST, **self._choices())
        if form.is_valid():
            data = dict(form.cleaned_data)
            if data["target"] != RouteTarget.USER:
                data["user"] = None
            if data["target"] != RouteTarget.OFFICE:
                data["office"] = None
            try:
                alerts.alert_rule_save(institution=self.institution, rule=None, data=data)
            except InterventionRuleError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Rule added at the end of the order."))
                return redirect("alert-rules", self.institution.slug)
        return self.render_to_response(self.get_context_data(form=form), status=400)


