"""Roster import pages: upload -> preview (what changes, nothing imported) -> confirm or discard."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.views import View
from django.views.generic import FormView, TemplateView

from institutions.view_mixins import InstitutionPageMixin
from students.importing.errors import ImportFileError

from .forms import RosterUploadForm
from .models import RosterImportStatus
from .roster_import import (
    KINDS,
    RosterInvalid,
    RosterPreviewStale,
    roster_import_confirm,
    roster_import_discard,
    roster_import_preview,
)
from .selectors import access_roster_import, roster_import_list


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
            roster = roster_import_preview(institution=self.institution, uploaded_files=form.cleaned_data["files"],
                                           user=self.request.user,
                                           student_id_field=form.cleaned_data["student_id_field"])
        except ImportFileError as exc:
            form.add_error("files", exc.message)
            return self.form_invalid(form)
        except RosterInvalid as exc:
            form.add_error(None, f"The roster has {exc.errors.total} problem(s); nothing was imported. "
                                 "Fix them in the export and upload it again.")
            return self.render_to_response(self.get_context_data(form=form, row_errors=exc.errors))
        return redirect("roster-import-detail", self.institution.slug, roster.pk)


class RosterImportDetailView(RosterPageMixin, TemplateView):
    template_name = "courses/roster_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        roster = self.get_roster_import()
        preview = roster.preview or {}
        counts, examples = preview.get("counts", {}), preview.get("examples", {})
        context.update(
            roster=roster, pending=roster.status == RosterImportStatus.PREVIEWED,
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
        except RosterInvalid as exc:
            messages.error(request, f"The roster no longer fits the platform's data ({exc.errors.total} problem(s), "
                                    "e.g. a course it refers to was deleted); nothing was imported. Upload it again.")
        except RosterPreviewStale:
            messages.warning(request, "The institution's data changed since this preview, so nothing was imported. "
                                      "The preview below now shows what the import would do: review it and confirm "
                                      "again.")
        else:
            messages.success(request, "The roster was imported.")
        return redirect("roster-import-detail", self.institution.slug, roster.pk)


class RosterImportDiscardView(RosterPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        roster_import_discard(institution=self.institution, roster_import=self.get_roster_import())
        messages.info(request, "The preview was discarded; nothing was imported.")
        return redirect("roster-upload", self.institution.slug)
