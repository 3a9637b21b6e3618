"""Import pages: upload -> preview and mapping -> validation report -> commit; the file is read
only by jobs (preview, validation, commit), in the worker."""

from __future__ import annotations

import io

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.views import View
from django.views.generic import FormView, TemplateView

from audit.models import AccessAction
from audit.recording import AccessRecordedPageMixin
from audit.services import access_record_for_request
from institutions.models import Job, JobStatus
from institutions.view_mixins import InstitutionPageMixin

from . import tasks  # noqa: F401 - registers the import job runner
from .import_forms import ImportMappingForm, ImportUploadForm
from .importing import ImportFileError, ImportReport, import_mapping_remember, mapping_from_dict
from .importing.mapping import check_mapping
from .importing.reports import write_error_csv
from .importing.selectors import import_error_rows, import_outcome_words, import_upload_list, import_upload_preview
from .importing.uploads import (
    import_changes_file,
    import_upload_create,
    import_upload_discard,
    import_upload_path_exists,
    import_upload_preview_start,
    import_upload_set_mapping,
    import_upload_start,
)
from .models import ImportUpload, ImportUploadStatus
from .selectors import feature_definition_list


class ImportPageMixin(InstitutionPageMixin):
    required_capability = "manage_data"

    def get_upload(self) -> ImportUpload:
        return get_object_or_404(self.scoped(ImportUpload), pk=self.kwargs["pk"])


class ImportUploadView(ImportPageMixin, FormView):
    template_name = "students/import_upload.html"
    form_class = ImportUploadForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["uploads"] = import_upload_list(institution=self.institution)[:10]
        return context

    def form_valid(self, form):
        try:
            upload = import_upload_create(institution=self.institution, uploaded_file=form.cleaned_data["file"],
                                          user=self.request.user)
        except ImportFileError as exc:
            form.add_error("file", exc.message)
            return self.form_invalid(form)
        import_upload_preview_start(upload=upload, user=self.request.user)  # the worker reads it
        return redirect("import-mapping", self.institution.slug, upload.pk)


class ImportMappingView(AccessRecordedPageMixin, ImportPageMixin, TemplateView):
    """The preview and the column mapping, drawn from the preview its job stored (the page never
    reads the file); while the worker reads it, "reading your file" with the job's progress, then
    its refusal if the file is refused."""

    template_name = "students/import_mapping.html"
    # The preview shows the file's first rows: students' values.
    access_action = AccessAction.IMPORT_PREVIEW
    access_object_kwarg = "pk"
    access_requires_context = "preview"

    def _prepare(self) -> bool:
        """Load the upload; False while there is no stored preview to draw the mapping from."""
        self.upload = self.get_upload()
        if self.upload.status in (ImportUploadStatus.COMMITTED, ImportUploadStatus.DISCARDED,
                                  ImportUploadStatus.COMMITTING):
            raise Http404("This upload is no longer available.")
        self.preview = import_upload_preview(self.upload)
        if self.preview is None:
            return False
        if self.upload.mapping:  # the admin is coming back to fix the mapping: start from their choice
            self.preview.mapping = mapping_from_dict(self.upload.mapping)
        self.definitions = list(feature_definition_list(institution=self.institution))
        return True

    def _form(self, data=None):
        words = import_outcome_words(preview=self.preview, spec=self.preview.mapping)
        return ImportMappingForm(data, header=self.preview.info.header, suggestion=self.preview.mapping,
                                 definitions=self.definitions, outcome_words=words)

    def get(self, request, *args, **kwargs):
        if not self._prepare():
            return self._reading()
        if request.headers.get("HX-Request"):  # the reading state's poll: the preview is there now
            return _reload_page()
        return self.render_to_response(self.get_context_data(form=self._form()))

    def post(self, request, *args, **kwargs):
        if not self._prepare():
            return redirect("import-mapping", self.institution.slug, self.upload.pk)
        form = self._form(request.POST)
        if form.is_valid():
            spec = form.to_spec()
            try:
                check_mapping(spec, self.preview.info.header, {d.key: d for d in self.definitions})
            except ImportFileError as exc:
                form.add_error(None, exc.message)
            else:
                if not import_upload_path_exists(self.upload):
                    messages.error(request, gettext("%(name)s is no longer kept on the server; upload it again.")
                                   % {"name": self.upload.original_name})
                    return redirect("import-upload", self.institution.slug)
                import_upload_set_mapping(upload=self.upload, spec=spec)
                import_mapping_remember(institution=self.institution, spec=spec, user=request.user)
                import_upload_start(upload=self.upload, commit=False, user=request.user)
                return redirect("import-detail", self.institution.slug, self.upload.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def _reading(self):
        """No preview yet: the preview job's progress (polled), or why the file was refused."""
        job = self.upload.preview_job
        file_error = (job.result or {}).get("file_error") if job is not None and job.is_finished else None
        running = job is not None and not job.is_finished
        if self.request.headers.get("HX-Request") and not running:
            return _reload_page()
        context = super().get_context_data(
            upload=self.upload, job=job, running=running, file_error=file_error,
            can_read_again=not running and file_error is None and import_upload_path_exists(self.upload),
        )
        template = ("students/_import_reading.html" if self.request.headers.get("HX-Request")
                    else "students/import_reading.html")
        return TemplateResponse(self.request, template, context)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = kwargs["form"]
        context.update(
            upload=self.upload, preview=self.preview,
            columns=[{"name": name, "target": form[f"target_{i}"], "label": form[f"label_{i}"],
                      "kind": form[f"kind_{i}"]} for i, name in form.column_rows],
            outcome_fields=[form[f"outcome_{i}"] for i in range(len(form.outcome_words))],
        )
        return context


def _reload_page() -> HttpResponse:
    """Answer an htmx poll by reloading the whole page (the state it showed is over)."""
    response = HttpResponse(status=204)
    response["HX-Refresh"] = "true"
    return response


class ImportReadAgainView(ImportPageMixin, View):
    """Start a new preview job for a file whose reading was cancelled or stopped (or an upload
    stored before previews ran in the worker)."""

    def post(self, request, *args, **kwargs):
        upload = self.get_upload()
        job = upload.preview_job
        if (upload.status not in (ImportUploadStatus.UPLOADED, ImportUploadStatus.VALIDATED,
                                  ImportUploadStatus.INVALID)
                or (job is not None and not job.is_finished) or not import_upload_path_exists(upload)):
            messages.error(request, gettext("This file cannot be read again: upload it again."))
            return redirect("import-upload", self.institution.slug)
        import_upload_preview_start(upload=upload, user=request.user)
        return redirect("import-mapping", self.institution.slug, upload.pk)


def _report(job: Job | None) -> ImportReport | None:
    if job is None or not job.result or "file_error" in job.result or "storage_error" in job.result:
        return None
    return ImportReport.from_dict(job.result)


class ImportDetailView(AccessRecordedPageMixin, ImportPageMixin, TemplateView):
    """Where the upload stands: the running job's progress, then the report and the next step."""

    # The report lists rejected cell values and the rows they came from.
    access_action = AccessAction.IMPORT_REPORT
    access_object_kwarg = "pk"
    access_requires_context = "report"

    def get_template_names(self):
        if self.request.headers.get("HX-Request"):
            return ["students/_import_status.html"]
        return ["students/import_detail.html"]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        upload = self.get_upload()
        job = upload.commit_job or upload.validation_job
        report = _report(job)
        validation_report = _report(upload.validation_job)
        context.update(
            upload=upload, job=job, report=report,
            file_error=(job.result or {}).get("file_error") if job else None,
            running=job is not None and not job.is_finished,
            can_commit=upload.status == ImportUploadStatus.VALIDATED,
            can_commit_valid_rows=(upload.status == ImportUploadStatus.INVALID and validation_report is not None
                                   and validation_report.valid_rows > 0),
            validation_report=validation_report,
            error_rows=import_error_rows(upload=upload, report=validation_report)
            if validation_report and validation_report.has_errors and upload.commit_job is None else [],
        )
        return context


class ImportCommitView(ImportPageMixin, View):
    def post(self, request, *args, **kwargs):
        upload = self.get_upload()
        valid_rows_only = request.POST.get("valid_rows_only") == "1"
        allowed = upload.status == ImportUploadStatus.VALIDATED or (
            valid_rows_only and upload.status == ImportUploadStatus.INVALID
            and request.POST.get("confirm_skip") == "1"
        )
        if not allowed:
            messages.error(request, gettext("This file cannot be imported as it is: see the report. To import only "
                                           "the valid rows, tick the confirmation box."))
            return redirect("import-detail", self.institution.slug, upload.pk)
        import_upload_start(upload=upload, commit=True, valid_rows_only=valid_rows_only, user=request.user)
        return redirect("import-detail", self.institution.slug, upload.pk)


class ImportDiscardView(ImportPageMixin, View):
    def post(self, request, *args, **kwargs):
        upload = self.get_upload()
        if upload.status in (ImportUploadStatus.COMMITTING, ImportUploadStatus.VALIDATING):
            messages.error(request, gettext("The file is being processed; wait for the job to finish."))
            return redirect("import-detail", self.institution.slug, upload.pk)
        import_upload_discard(upload=upload)
        messages.info(request, gettext("%(name)s was discarded.") % {"name": upload.original_name})
        return redirect("import-upload", self.institution.slug)


class ImportErrorsCsvView(ImportPageMixin, View):
    """The validation report as CSV: row, column, value, reason."""

    def get(self, request, *args, **kwargs):
        upload = self.get_upload()
        report = _report(upload.validation_job)
        if report is None or upload.validation_job.status not in (JobStatus.FAILED, JobStatus.SUCCEEDED):
            raise Http404("No report for this upload yet.")
        buffer = io.StringIO()
        write_error_csv(buffer, report)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{upload.pk}-errors.csv"'
        access_record_for_request(request, institution=self.institution, action=AccessAction.IMPORT_ERRORS_EXPORT,
                                  object_id=upload.pk, result_count=len(report.errors))
        return response


class ImportClearBlankColumnsView(ImportPageMixin, View):
    """Validate again, letting the columns that are blank in every row clear the stored values
    (by default they are left alone); the new report lists each value it would clear."""

    def post(self, request, *args, **kwargs):
        upload = self.get_upload()
        report = _report(upload.validation_job)
        if upload.status not in (ImportUploadStatus.VALIDATED, ImportUploadStatus.INVALID) or report is None:
            messages.error(request, gettext("This upload is not waiting to be imported."))
            return redirect("import-detail", self.institution.slug, upload.pk)
        chosen = set(request.POST.getlist("column")) & set(report.blank_columns)
        if not chosen:
            messages.error(request, gettext("Choose a column that is blank in every row."))
            return redirect("import-detail", self.institution.slug, upload.pk)
        spec = mapping_from_dict(upload.mapping)
        spec.clear_blank_columns = sorted({*spec.clear_blank_columns, *chosen})
        import_upload_set_mapping(upload=upload, spec=spec)
        import_upload_start(upload=upload, commit=False, user=request.user)
        return redirect("import-detail", self.institution.slug, upload.pk)


class ImportChangesCsvView(ImportPageMixin, View):
    """Every student's change (row, external id, created/updated/unchanged, field, old, new,
    cleared) as CSV: what the validated file would do, or what its import did."""

    def get(self, request, *args, **kwargs):
        upload = self.get_upload()
        path = import_changes_file(upload)
        if path is None:
            raise Http404("No list of changes for this upload.")
        response = FileResponse(path.open("rb"), as_attachment=True, filename=f"import-{upload.pk}-changes.csv",
                                content_type="text/csv; charset=utf-8")
        access_record_for_request(request, institution=self.institution, action=AccessAction.IMPORT_CHANGES_EXPORT,
                                  object_id=upload.pk)
        return response
