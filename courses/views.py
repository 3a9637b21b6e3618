"""Roster import pages: upload -> (job) preview (what changes, nothing imported) -> confirm (job) or discard."""

from __future__ import annotations

import datetime
import zoneinfo

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.language import recipient_language
from institutions.scoping import institution_scope
from institutions.view_mixins import InstitutionPageMixin, int_param
from students.importing.errors import ImportFileError

from .forms import ConcernTypeForm, RosterUploadForm, SurveyOpenForm
from .models import RosterImportStatus, SurveyStatus
from .roster_import import (
    KINDS,
    roster_import_confirm,
    roster_import_discard,
    roster_import_stopped,
    roster_import_upload,
)
from .selectors import (
    academic_session_list,
    access_concern_type,
    access_roster_import,
    access_survey,
    concern_type_list,
    instructor_survey_roster,
    roster_import_list,
    survey_concern_types,
    survey_list,
    survey_participation,
)
from .surveys import (
    COMMENT_MAX,
    SurveyAnswerInvalid,
    SurveyLinkRefused,
    SurveyPreviewChanged,
    SurveyRuleError,
    concern_type_create,
    concern_type_move,
    concern_type_update,
    survey_answer_parse,
    survey_close,
    survey_is_open,
    survey_link_resolve,
    survey_marks_save,
    survey_open,
    survey_preview,
    survey_record_opened,
    survey_reminder_count,
    survey_roster_read_record,
    survey_send_reminders,
    survey_validate,
)


class RosterPageMixin(InstitutionPageMixin):
    required_capability = "manage_data"

    def get_roster_import(self):
        return access_roster_import(institution=self.institution, roster_import_id=self.kwargs["pk"])


class RosterUploadView(RosterPageMixin, FormView):
    template_name = "courses/roster_upload.html"
    form_class = RosterUploadForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["roster_imports"] = roster_import_list(institution=self.institution)[:10]
        return context

    def form_valid(self, form):
        try:
            roster = roster_import_upload(institution=self.institution, uploaded_files=form.cleaned_data["files"],
                                          user=self.request.user,
                                          student_id_field=form.cleaned_data["student_id_field"])
        except ImportFileError as exc:
            form.add_error("files", exc.message)
            return self.form_invalid(form)
        return redirect("roster-import-detail", self.institution.slug, roster.pk)


_WORKING = (RosterImportStatus.CHECKING, RosterImportStatus.COMMITTING)


class RosterImportDetailView(RosterPageMixin, TemplateView):
    """The roster import: its job's progress while the worker checks or imports it (the page polls,
    and reloads itself when the job is over), then the preview, the refusal, or what it did."""

    template_name = "courses/roster_detail.html"

    def get(self, request, *args, **kwargs):
        self.roster = self.get_roster_import()
        working = self.roster.status in _WORKING and not roster_import_stopped(self.roster)
        if request.headers.get("HX-Request"):
            if not working:
                response = HttpResponse(status=204)
                response["HX-Refresh"] = "true"
                return response
            return TemplateResponse(request, "courses/_roster_progress.html", self.get_context_data(**kwargs))
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        roster = self.roster
        preview = roster.preview or {}
        counts, examples = preview.get("counts", {}), preview.get("examples", {})
        commit_job = roster.commit_job
        stopped = roster_import_stopped(roster)
        context.update(
            roster=roster, pending=roster.status == RosterImportStatus.PREVIEWED,
            working=roster.status in _WORKING and not stopped, stopped=stopped,
            job=roster.commit_job if roster.status == RosterImportStatus.COMMITTING else roster.preview_job,
            refusal=roster.result if roster.status == RosterImportStatus.FAILED else None,
            changed_since_preview=(roster.status == RosterImportStatus.PREVIEWED and commit_job is not None
                                   and (commit_job.result or {}).get("code") == "roster_preview_changed"),
            commit_error=commit_job.error if (roster.status == RosterImportStatus.PREVIEWED and commit_job is not None
                                              and commit_job.is_finished) else "",
            kinds=[{"label": kind.label, "counts": counts.get(kind.name, {}), "examples": examples.get(kind.name, [])}
                   for kind in KINDS],
            skipped=preview.get("skipped", {}), cascade=preview.get("cascade", {}),
            ignored_files=preview.get("ignored_files", []),
        )
        return context


class RosterImportConfirmView(RosterPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        roster = self.get_roster_import()
        try:
            roster_import_confirm(institution=self.institution, roster_import=roster, user=request.user)
        except ImportFileError as exc:
            messages.error(request, exc.message)
        return redirect("roster-import-detail", self.institution.slug, roster.pk)


class RosterImportDiscardView(RosterPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        roster_import_discard(institution=self.institution, roster_import=self.get_roster_import())
        messages.info(request, _("The preview was discarded; nothing was imported."))
        return redirect("roster-upload", self.institution.slug)


# --- Progress surveys: the administrator's pages -----------------------------------------------------------------

class SurveyPageMixin(InstitutionPageMixin):
    required_capability = "manage_data"

    def get_survey(self):
        return access_survey(institution=self.institution, survey_id=self.kwargs["pk"])


class SurveyListView(SurveyPageMixin, TemplateView):
    template_name = "courses/survey_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["surveys"] = survey_list(institution=self.institution)[:50]
        context["now"] = timezone.now()
        return context


class SurveyOpenView(SurveyPageMixin, TemplateView):
    """Fill in the survey, see who it will email (nothing sent), then confirm."""

    template_name = "courses/survey_open.html"

    def make_form(self, data=None):
        return SurveyOpenForm(data, terms=academic_session_list(institution=self.institution),
                              concern_types=concern_type_list(institution=self.institution, active_only=True),
                              initial=None if data else self.initial())

    def initial(self):
        now = timezone.localtime(timezone.now(), timezone=zoneinfo.ZoneInfo(self.institution.timezone))
        active = [t.pk for t in concern_type_list(institution=self.institution, active_only=True)]
        terms = list(academic_session_list(institution=self.institution)[:200])
        current = next((t for t in terms if t.start_date <= now.date() <= t.end_date), terms[0] if terms else None)
        return {"term": current, "opens_at": now.replace(second=0, microsecond=0),
                "closes_at": (now + datetime.timedelta(days=14)).replace(second=0, microsecond=0),
                "concern_type_ids": active}

    def get(self, request, *args, **kwargs):
        with timezone.override(self.institution.timezone):
            return self.render_to_response(self.get_context_data(form=self.make_form()))

    def post(self, request, *args, **kwargs):
        with timezone.override(self.institution.timezone):
            return self._post(request)

    def _post(self, request):
        form = self.make_form(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            cleaned = survey_validate(institution=self.institution, data=form.cleaned_data)
        except SurveyRuleError as exc:
            for name, errors in exc.errors.items():
                for error in errors:
                    form.add_error(name or None, error)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        preview = survey_preview(institution=self.institution, term=cleaned["term"])
        if "confirm" not in request.POST:
            return self.render_to_response(self.get_context_data(form=form, preview=preview))
        try:
            survey = survey_open(institution=self.institution, data=form.cleaned_data, user=request.user,
                                 expected_fingerprint=request.POST.get("fingerprint", ""))
        except SurveyPreviewChanged as exc:
            messages.warning(request, _("The term's instructors changed since the preview, so nothing was sent. "
                                        "Check the new numbers below and confirm again."))
            return self.render_to_response(self.get_context_data(form=form, preview=exc.preview), status=409)
        except SurveyRuleError as exc:  # e.g. the closing time passed while the preview was on screen
            for name, errors in exc.errors.items():
                for error in errors:
                    form.add_error(name or None, error)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        messages.success(request, ngettext("The survey is open; %(count)s instructor is being emailed.",
                                           "The survey is open; %(count)s instructors are being emailed.",
                                           preview.to_email) % {"count": preview.to_email})
        return redirect("survey-detail", self.institution.slug, survey.pk)


class SurveyDetailView(SurveyPageMixin, TemplateView):
    template_name = "courses/survey_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        survey = self.get_survey()
        context.update(survey=survey, participation=survey_participation(institution=self.institution, survey=survey),
                       concern_types=survey_concern_types(institution=self.institution, survey=survey),
                       is_open=survey_is_open(survey), closed=survey.status == SurveyStatus.CLOSED,
                       reminder_count=survey_reminder_count(institution=self.institution, survey=survey))
        return context


class SurveyRemindView(SurveyPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        survey = self.get_survey()
        expected = int_param(request.POST.get("expected"))
        if expected is None:
            messages.error(request, _("The reminder form was incomplete; nothing was sent."))
        else:
            try:
                sent = survey_send_reminders(institution=self.institution, survey=survey, user=request.user,
                                             expected=expected)
            except SurveyRuleError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, ngettext(
                    "Reminders are being emailed to %(count)s instructor who has not answered, with a new link "
                    "(the earlier one no longer works).",
                    "Reminders are being emailed to %(count)s instructors who have not answered, each with a new "
                    "link (the earlier one no longer works).", sent) % {"count": sent})
        return redirect("survey-detail", self.institution.slug, survey.pk)


class SurveyCloseView(SurveyPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        survey = survey_close(institution=self.institution, survey=self.get_survey(), user=request.user)
        messages.success(request, _("“%(title)s” is closed; every instructor's link stopped working.")
                         % {"title": survey.title})
        return redirect("survey-detail", self.institution.slug, survey.pk)


class ConcernTypeListView(SurveyPageMixin, TemplateView):
    """Add, rename, deactivate and reorder what instructors can mark."""

    template_name = "courses/concern_types.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["types"] = concern_type_list(institution=self.institution)
        context.setdefault("form", ConcernTypeForm())
        return context

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action", "")
        try:
            if action == "add":
                form = ConcernTypeForm(request.POST)
                if not form.is_valid():
                    return self.render_to_response(self.get_context_data(form=form), status=400)
                created = concern_type_create(institution=self.institution, **form.cleaned_data)
                messages.success(request, _("Added %(label)s.") % {"label": created.label})
            elif action in ("rename", "toggle", "up", "down"):
                concern_type = access_concern_type(institution=self.institution,
                                                   concern_type_id=request.POST.get("type"))
                if action == "rename":
                    concern_type_update(institution=self.institution, concern_type=concern_type,
                                        label=request.POST.get("label", ""))
                    messages.success(request, _("Renamed to %(label)s.") % {"label": concern_type.label})
                elif action == "toggle":
                    concern_type_update(institution=self.institution, concern_type=concern_type,
                                        is_active=not concern_type.is_active)
                    if concern_type.is_active:
                        text = _("%(label)s: offered again in new surveys.")
                    else:
                        text = _("%(label)s: no longer offered in new surveys.")
                    messages.success(request, text % {"label": concern_type.label})
                else:
                    concern_type_move(institution=self.institution, concern_type=concern_type,
                                      offset=-1 if action == "up" else 1)
            else:
                messages.error(request, _("Unknown action; nothing changed."))
        except SurveyRuleError as exc:
            messages.error(request, _("%(error)s Nothing changed.") % {"error": exc})
        return redirect("concern-types", self.institution.slug)


# --- Progress surveys: the instructor's page (no account; the link is the credential) ---------------------------

REFUSALS = {
    "unknown": (404, gettext_lazy("This survey link does not work"),
                gettext_lazy("The address is incomplete or was changed, or a newer email replaced it. Use the link "
                             "in the latest survey email you received.")),
    "revoked": (410, gettext_lazy("This survey link no longer works"),
                gettext_lazy("The link was withdrawn. Use the link in the latest survey email you received.")),
    "closed": (410, gettext_lazy("This survey has closed"),
               gettext_lazy("The survey's window has ended, so its links no longer open the roster. Thank you; if "
                            "you still want to raise a concern about a student, contact the student success "
                            "office.")),
    "not_open": (403, gettext_lazy("This survey is not open yet"),
                 gettext_lazy("The survey has not opened yet. Come back to this link when it opens.")),
    "no_session": (403, gettext_lazy("Open the link from your email again"),
                   gettext_lazy("This page opens from the link in your survey email (this browser has not opened "
                                "it, or its session ended). Open that link again.")),
}


def _private(response):
    # The link is the credential: no cache keeps the roster, and no other site this page links to
    # learns the link. "same-origin", not "no-referrer": with no referrer a browser sends the page's
    # own form as "Origin: null", which the CSRF check refuses (the instructor could not save).
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _refused(request, reason: str, survey=None):
    status, title, text = REFUSALS[reason]
    opens = survey.opens_at if reason == "not_open" and survey is not None else None
    zone = survey.institution.timezone if survey is not None else "UTC"
    # A survey that is known speaks its institution's language; an unknown link, the browser's.
    language = recipient_language(institution=survey.institution) if survey is not None else translation.get_language()
    with timezone.override(zone), translation.override(language):
        response = render(request, "courses/survey_refused.html", {
            "refusal_title": title, "refusal_text": text, "error_code": status, "opens_at": opens,
            "time_zone": zone}, status=status)
    return _private(response)


def _session_key(invitation_id: int) -> str:
    return f"survey-link-{invitation_id}"


class SurveyAnswerView(View):
    """``/survey/<token>/``: the emailed link. A GET keeps the token in the browser's session and
    moves on to ``/survey/answer/<invitation id>/``, so that the secret leaves the address bar, the
    history and the request logs of everything after the first request (as Django's password
    reset does). A POST to the link itself is still answered, for a page opened before."""

    http_method_names = ["get", "post"]
    moves_to_session = True

    def token(self, request, kwargs) -> str | None:
        return kwargs["token"]

    def dispatch(self, request, *args, **kwargs):
        token = self.token(request, kwargs)
        if token is None:
            return _refused(request, "no_session")
        try:
            invitation = survey_link_resolve(token=token)
        except SurveyLinkRefused as exc:
            if exc.reason == "not_open" and self.moves_to_session and request.method == "GET":
                request.session[_session_key(exc.invitation.pk)] = token
                return _private(redirect("survey-answer-session", exc.invitation.pk))
            return _refused(request, exc.reason, exc.survey)
        if not self.belongs(invitation, kwargs):
            return _refused(request, "unknown")
        if self.moves_to_session and request.method == "GET":
            request.session[_session_key(invitation.pk)] = token
            return _private(redirect("survey-answer-session", invitation.pk))
        # Instructors have no account: the page is in their institution's language, as their email was.
        with (institution_scope(invitation.institution), timezone.override(invitation.institution.timezone),
              translation.override(recipient_language(institution=invitation.institution))):
            self.invitation = invitation
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return _private(response)

    def belongs(self, invitation, kwargs) -> bool:
        return True

    def context(self, **extra):
        invitation = self.invitation
        types = survey_concern_types(institution=invitation.institution, survey=invitation.survey)
        roster = instructor_survey_roster(invitation=invitation)
        return {"invitation": invitation, "survey": invitation.survey, "instructor": invitation.instructor,
                "survey_institution": invitation.institution, "types": types,
                "sections": [{"section": item.section, "rows": item.rows(types)} for item in roster],
                "comment_max": COMMENT_MAX, **extra}

    def get(self, request, *args, **kwargs):
        survey_record_opened(invitation=self.invitation)
        context = self.context()
        survey_roster_read_record(request, invitation=self.invitation,
                                  students=sum(len(item["rows"]) for item in context["sections"]))
        return render(request, "courses/survey_answer.html", context)

    def post(self, request, *args, **kwargs):
        invitation = self.invitation
        roster = {item.section.pk: item for item in instructor_survey_roster(invitation=invitation)}
        section = roster.get(int_param(request.POST.get("section")))
        if section is None:
            messages.error(request, _("That section is not one of yours in this survey; nothing was saved."))
            return render(request, "courses/survey_answer.html", self.context(), status=400)
        types = survey_concern_types(institution=invitation.institution, survey=invitation.survey)
        try:
            answers = survey_answer_parse(post=request.POST, student_ids=[e.student_id for e in section.enrolments],
                                          type_ids=[t.pk for t in types])
        except SurveyAnswerInvalid as exc:
            messages.error(request, str(exc))
            return render(request, "courses/survey_answer.html", self.context(), status=400)
        saved = survey_marks_save(invitation=invitation, section=section.section, answers=answers)
        messages.success(request, _("Saved for %(section)s: %(new)s new, %(changed)s changed, %(removed)s removed. "
                                    "Thank you.") % {"section": section.section.title, "new": len(saved.created),
                                                     "changed": len(saved.updated), "removed": len(saved.removed)})
        return redirect(reverse("survey-answer-session", args=[invitation.pk]) + f"#section-{section.section.pk}")


class SurveySessionAnswerView(SurveyAnswerView):
    """``/survey/answer/<invitation id>/``: the same page, the token read from the session the
    emailed link started (checked again on every request, as on the link itself)."""

    moves_to_session = False

    def token(self, request, kwargs) -> str | None:
        return request.session.get(_session_key(kwargs["invitation_id"]))

    def belongs(self, invitation, kwargs) -> bool:
        return invitation.pk == kwargs["invitation_id"]
