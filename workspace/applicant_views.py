"""Score an applicant: one record typed into a form, or a file of them scored to a CSV.

Nothing about the applicants is stored: the page shows the risk, band and factors (as the
student profile shows a student's), the file's answer streams back as a download, and each
scoring writes one access-log entry (who, when, the model version, how many records; never a
value). Reads and checks live in ``predictions.services.applicant_scoring``/``applicant_files``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import get_language, ngettext
from django.views.generic import TemplateView

from audit.models import AccessAction
from audit.services import access_record_for_request
from institutions.view_mixins import InstitutionPageMixin
from predictions.factor_sentences import institution_factors
from predictions.selectors import model_version_live
from predictions.services.applicant_files import (
    ApplicantFileRowsInvalid,
    applicant_file_read,
    applicant_scores_csv_rows,
)
from predictions.services.applicant_scoring import (
    MAX_FILE_BYTES,
    MAX_FILE_ROWS,
    ApplicantRecord,
    NoLiveModel,
    applicant_schema,
    applicant_scorer,
    applicant_values_clean,
)
from students.importing.errors import ImportFileError
from students.selectors import feature_labels_shown

from . import selectors
from .forms import ApplicantFileForm, ApplicantScoreForm
from .views import csv_rows_stream


class ApplicantScoreView(InstitutionPageMixin, TemplateView):
    """``GET``: the form; ``POST``: the applicant's risk, band and factors (nothing stored)."""

    template_name = "workspace/applicant_score.html"
    required_capability = "score_applicants"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        schema = applicant_schema(institution=self.institution)
        definitions = schema.offered
        context.setdefault("form", ApplicantScoreForm(definitions=definitions))
        context.setdefault("file_form", ApplicantFileForm())
        context.update(live_model=model_version_live(institution=self.institution), has_features=bool(definitions),
                       applicant_stage=schema.stage, max_file_rows=MAX_FILE_ROWS,
                       max_file_megabytes=MAX_FILE_BYTES // 1_048_576)
        return context

    def post(self, request, *args, **kwargs):
        if "file" in request.FILES or request.POST.get("action") == "file":
            return self.score_file(request)
        schema = applicant_schema(institution=self.institution)
        form = ApplicantScoreForm(request.POST, definitions=schema.offered)
        context = {"form": form}
        if form.is_valid():
            values, errors = applicant_values_clean(schema, form.feature_values())
            if errors:
                form.add_feature_errors(errors)
            else:
                try:
                    scorer = applicant_scorer(institution=self.institution)
                except NoLiveModel as exc:
                    context["scoring_error"] = str(exc)
                else:
                    score = scorer.score([ApplicantRecord(ref=form.cleaned_data["ref"], features=values)])[0]
                    factors = selectors.student_factor_bars(
                        institution_factors(institution=self.institution, factors=score.factors))
                    context.update(score=score, factors=factors, model_version=scorer.version,
                                   breakdown=selectors.risk_breakdown(risk=score.risk, base_risk=score.base_risk,
                                                                      factors=score.factors))
                    access_record_for_request(request, institution=self.institution,
                                              action=AccessAction.APPLICANT_SCORE,
                                              filters={"model_version": scorer.version.number}, result_count=1)
        return self.render_to_response(self.get_context_data(**context))

    def score_file(self, request):
        file_form = ApplicantFileForm(request.POST, request.FILES)
        context = {"file_form": file_form}
        if not file_form.is_valid():
            return self.render_to_response(self.get_context_data(**context))
        upload = file_form.cleaned_data["file"]
        try:
            records = _read_upload(institution=self.institution, upload=upload)
            scorer = applicant_scorer(institution=self.institution)
        except NoLiveModel as exc:
            file_form.add_error("file", str(exc))
        except ImportFileError as exc:
            file_form.add_error("file", exc.message)
        except ApplicantFileRowsInvalid as exc:
            file_form.add_error("file", ngettext(
                "The file has %(count)d problem (below); nothing was scored.",
                "The file has %(count)d problems (below); nothing was scored.", exc.count) % {"count": exc.count})
            context.update(file_problems=exc.problems, file_problem_count=exc.count)
        else:
            access_record_for_request(request, institution=self.institution, action=AccessAction.APPLICANT_BATCH_SCORE,
                                      filters={"model_version": scorer.version.number}, result_count=len(records))
            # The model is loaded and the records checked: the rows are scored as they stream out.
            rows = applicant_scores_csv_rows(scorer.score_in_chunks(records), model_version=scorer.version.number,
                                             labels=feature_labels_shown(institution=self.institution),
                                             language=get_language())
            response = StreamingHttpResponse(csv_rows_stream(rows), content_type="text/csv; charset=utf-8")
            stamp = timezone.localdate().isoformat()
            response["Content-Disposition"] = (f'attachment; filename="{self.institution.slug}-{stamp}-'
                                               f'applicant-scores.csv"')
            return response
        return self.render_to_response(self.get_context_data(**context))


def _read_upload(*, institution, upload) -> list[ApplicantRecord]:
    """The uploaded file's records; the bytes are in a temporary file only while they are read."""
    if upload.size > MAX_FILE_BYTES:  # before anything is copied
        return applicant_file_read(institution=institution, path="", original_name=upload.name, size=upload.size)
    with tempfile.NamedTemporaryFile(suffix=Path(upload.name or "").suffix[:10]) as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        return applicant_file_read(institution=institution, path=handle.name, original_name=upload.name,
                                   size=upload.size)
