"""Model registry and scoring pages (``/i/<slug>/models/...``): thin, every write goes through services."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext, gettext_noop
from django.views.generic import DetailView, FormView, ListView, TemplateView, View

from institutions.models import Job
from institutions.view_mixins import InstitutionPageMixin
from students.selectors import feature_definition_changes
from students.stages import feature_stage_for_input, feature_stage_list

from .forms import (
    ConcernFeatureForm,
    DecisionForm,
    HistoryRetentionForm,
    OutcomeMappingForm,
    PredictionSettingsForm,
    PromoteForm,
    RejectForm,
    RescoreForm,
)
from .models import FeedbackReason, OutcomeClass
from .outcome_mapping import (
    MAPPABLE_OUTCOMES,
    OUTCOME_NAMES,
    OutcomeMapping,
    OutcomeMappingInvalid,
    training_population_rows,
)
from .selectors import (
    flagging_summary,
    model_drift,
    model_realised,
    model_version_latest_candidate,
    model_version_list,
    model_version_live,
    model_version_live_by_stage,
    model_version_report,
    model_version_rollback_target,
    model_version_stage,
    prediction_counts,
    prediction_job_list,
    prediction_schedule_list,
    prediction_settings_get,
    risk_feedback_counts,
)
from .services.concern_feature import (
    CONCERNS_FEATURE_KEY,
    ConcernFeatureRefused,
    concern_feature_preview,
    concern_feature_set,
)
from .services.history_retention import (
    HistoryRetention,
    HistoryRetentionInvalid,
    history_removal_preview,
    history_retention_set,
)
from .services.outcome_mapping import outcome_mapping_set, students_by_outcome
from .services.promotion import (
    GateOverrideRequired,
    ModelDecisionError,
    model_version_promote,
    model_version_reject,
    model_version_rollback,
)
from .services.requests import rescore_request, retrain_request
from .services.settings import prediction_settings_update

# What a person reads once they asked for a retrain or a rescore: (joined a running job, saved
# while the queue is unreachable, queued), each a whole sentence.
_QUEUED_MESSAGES = {
    "retrain": (
        gettext_noop("A retrain is already %(status)s; your request joined it (job #%(number)s)."),
        gettext_noop("The retrain is saved as job #%(number)s but the task queue is unreachable right now; it "
                     "will start automatically when the queue is back."),
        gettext_noop("The retrain is queued as job #%(number)s."),
    ),
    "rescore": (
        gettext_noop("A rescore is already %(status)s; your request joined it (job #%(number)s)."),
        gettext_noop("The rescore is saved as job #%(number)s but the task queue is unreachable right now; it "
                     "will start automatically when the queue is back."),
        gettext_noop("The rescore is queued as job #%(number)s."),
    ),
}


def _queued_message(job: Job, created: bool, what: str) -> str:
    joined, unreachable, queued = _QUEUED_MESSAGES[what]
    values = {"status": str(job.get_status_display()).lower(), "number": job.pk}
    if not created:
        return gettext(joined) % values
    if job.dispatch_error:
        return gettext(unreachable) % values
    return gettext(queued) % values


class ModelVersionListView(InstitutionPageMixin, TemplateView):
    template_name = "predictions/model_list.html"
    required_capability = "view_aggregates"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        stage, stage_unknown = None, False
        if self.request.GET.get("stage"):
            stage = feature_stage_for_input(institution=self.institution, key=self.request.GET["stage"][:40])
            stage_unknown = stage is None
        scoring = model_version_live(institution=self.institution)
        candidate = model_version_latest_candidate(institution=self.institution, stage=stage)
        # The candidate is shown beside the live model of its own stage: the one its gate compared it with.
        live = (model_version_live(institution=self.institution,
                                   stage=model_version_stage(institution=self.institution, version=candidate))
                if candidate else model_version_live(institution=self.institution, stage=stage))
        context.update(
            versions=model_version_list(institution=self.institution, stage=stage),
            stage=stage, stage_unknown=stage_unknown, stages=feature_stage_list(institution=self.institution),
            live_by_stage=model_version_live_by_stage(institution=self.institution),
            scoring_live=scoring,
            live=live,
            candidate=candidate,
            live_report=model_version_report(live) if live else None,
            candidate_report=model_version_report(candidate) if candidate else None,
            rollback_target=model_version_rollback_target(institution=self.institution),
            counts=prediction_counts(institution=self.institution),
            can_manage=self.membership.can("manage_models"),
            rescore_form=RescoreForm(),
            jobs=prediction_job_list(institution=self.institution)[:5],
            feedback_counts=sorted(risk_feedback_counts(institution=self.institution).items(), reverse=True),
            feedback_reasons=FeedbackReason.choices,
        )
        return context


class ModelVersionDetailView(InstitutionPageMixin, DetailView):
    template_name = "predictions/model_detail.html"
    required_capability = "view_aggregates"
    context_object_name = "version"

    def get_object(self, queryset=None):
        return get_object_or_404(model_version_list(institution=self.institution), number=self.kwargs["number"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        stage = model_version_stage(institution=self.institution, version=self.object)
        live = model_version_live(institution=self.institution, stage=stage)
        context.update(
            stage=stage,
            report=model_version_report(self.object),
            live=live,
            live_report=model_version_report(live) if live and live.pk != self.object.pk else None,
            can_manage=self.membership.can("manage_models"),
            decision_form=DecisionForm(),
            drift=model_drift(institution=self.institution, version=self.object),
            realised=model_realised(institution=self.institution, version=self.object),
            training_population=training_population_rows(self.object.training_counts or {}),
            calibration_fitted_on=((self.object.model_card or {}).get("calibration") or {}).get("fitted_on"),
            **flagging_summary(institution=self.institution,
                               settings=prediction_settings_get(institution=self.institution), version=self.object),
        )
        return context


class _ModelActionView(InstitutionPageMixin, View):
    required_capability = "manage_models"
    http_method_names = ["post"]

    def version(self):
        return get_object_or_404(model_version_list(institution=self.institution), number=self.kwargs["number"])

    def done(self):
        return redirect("model-list", institution_slug=self.institution.slug)


class _DecisionView(InstitutionPageMixin, TemplateView):
    """A decision on one version: GET shows what is decided and asks to confirm; POST decides."""

    template_name = "predictions/model_decision.html"
    required_capability = "manage_models"
    action = ""

    def version(self):
        return get_object_or_404(model_version_list(institution=self.institution), number=self.kwargs["number"])

    def form(self, version, data=None):
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        version = kwargs.get("version") or self.version()
        stage = model_version_stage(institution=self.institution, version=version)
        live = model_version_live(institution=self.institution, stage=stage)
        context.update(
            stage=stage,
            version=version, action=self.action, report=model_version_report(version),
            live=live if live and live.pk != version.pk else None,
            form=kwargs.get("form") or self.form(version),
        )
        return context

    def decide(self, version, form):
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        version = self.version()
        form = self.form(version, request.POST)
        if form.is_valid():
            try:
                message = self.decide(version, form)
            except GateOverrideRequired as exc:
                form.add_error("reason", str(exc))
            except ModelDecisionError as exc:
                messages.error(request, str(exc))
                return redirect("model-list", institution_slug=self.institution.slug)
            else:
                messages.success(request, message)
                return redirect("model-list", institution_slug=self.institution.slug)
        # Nothing was decided: the page again, with what is missing.
        return self.render_to_response(self.get_context_data(version=version, form=form))


class PromoteView(_DecisionView):
    action = "promote"

    def form(self, version, data=None):
        return PromoteForm(data, version=version)

    def decide(self, version, form):
        model_version_promote(institution=self.institution, version=version, user=self.request.user,
                              note=form.cleaned_data["note"], gate_override_reason=form.cleaned_data["reason"])
        return gettext("Model v%(number)s is live; students are being rescored with it.") % {"number": version.number}


class RejectView(_DecisionView):
    action = "reject"

    def form(self, version, data=None):
        return RejectForm(data, initial={"confirm": True})

    def decide(self, version, form):
        model_version_reject(institution=self.institution, version=version, user=self.request.user,
                             note=form.cleaned_data["note"])
        return gettext("Model v%(number)s was rejected.") % {"number": version.number}


class RollbackView(_ModelActionView):
    def post(self, request, *args, **kwargs):
        try:
            version = model_version_rollback(institution=self.institution, user=request.user)
        except ModelDecisionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, gettext("Rolled back: model v%(number)s is live again.")
                             % {"number": version.number})
        return self.done()


class RetrainView(_ModelActionView):
    def post(self, request, *args, **kwargs):
        job, created = retrain_request(institution=self.institution, created_by=request.user)
        messages.info(request, _queued_message(job, created, "retrain"))
        return redirect("prediction-job-list", institution_slug=self.institution.slug)


class RescoreView(_ModelActionView):
    def post(self, request, *args, **kwargs):
        form = RescoreForm(request.POST)
        form.is_valid()
        job, created = rescore_request(
            institution=self.institution, full=form.cleaned_data.get("full", False), created_by=request.user
        )
        messages.info(request, _queued_message(job, created, "rescore"))
        return redirect("prediction-job-list", institution_slug=self.institution.slug)


class PredictionSettingsView(InstitutionPageMixin, FormView):
    template_name = "predictions/settings.html"
    required_capability = "manage_models"
    form_class = PredictionSettingsForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = prediction_settings_get(institution=self.institution)
        return kwargs

    def form_valid(self, form):
        prediction_settings_update(
            institution=self.institution,
            data={field: form.cleaned_data[field] for field in form.Meta.fields},
        )
        messages.success(self.request, gettext("Settings saved; schedules updated."))
        return redirect("prediction-settings", institution_slug=self.institution.slug)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["schedules"] = prediction_schedule_list(institution=self.institution)
        context.update(flagging_summary(institution=self.institution,
                                        settings=prediction_settings_get(institution=self.institution),
                                        version=model_version_live(institution=self.institution)))
        settings = prediction_settings_get(institution=self.institution)
        context.setdefault("history_retention_form", HistoryRetentionForm(initial={
            "keep_all_days": settings.history_keep_all_days,
            "keep_monthly_months": settings.history_keep_monthly_months}))
        context.update(history_settings=settings, history_retention=HistoryRetention.of(settings),
                       history_removal=history_removal_preview(institution=self.institution))
        preview = concern_feature_preview(institution=self.institution)
        context.update(concern_feature=preview,
                       concern_feature_form=ConcernFeatureForm(initial={"enabled": preview.enabled}),
                       concern_feature_changes=feature_definition_changes(
                           institution=self.institution, feature=preview.definition, limit=5)
                       if preview.definition else [])
        mapping_form = context.setdefault("outcome_mapping_form", OutcomeMappingForm(
            initial=OutcomeMappingForm.initial_for(OutcomeMapping.of(settings).as_dict())))
        counts = students_by_outcome(institution=self.institution)
        context.update(outcome_settings=settings, outcome_rows=[
            {"field": mapping_form[f"outcome_{value}"], "students": counts.get(value, 0)}
            for value in MAPPABLE_OUTCOMES])
        change = context.get("outcome_change")
        if change is not None:
            names = dict(OutcomeClass.choices)
            context["outcome_moves"] = [
                {"outcome": OUTCOME_NAMES.get(move.outcome, move.outcome), "students": move.students,
                 "before": names[move.before], "after": names[move.after]} for move in change.moves]
            context["outcome_classes"] = [{**row, "name": names[row["class"]]} for row in change.by_class]
        return context


class HistoryRetentionView(PredictionSettingsView):
    """Save how long the prediction history is kept; a setting that removes more is previewed first."""

    http_method_names = ["post"]

    def _page(self, **context):
        # The settings form above it stays as saved (this request's data is the retention form's).
        settings_form = PredictionSettingsForm(instance=prediction_settings_get(institution=self.institution))
        return self.render_to_response(self.get_context_data(form=settings_form, **context))

    def post(self, request, *args, **kwargs):
        form = HistoryRetentionForm(request.POST)
        if not form.is_valid():
            return self._page(history_retention_form=form)
        try:
            change = history_retention_set(
                institution=self.institution, keep_all_days=form.cleaned_data["keep_all_days"],
                keep_monthly_months=form.cleaned_data["keep_monthly_months"], actor=request.user,
                confirmed=form.cleaned_data["confirmed"])
        except HistoryRetentionInvalid as exc:
            form.add_error(None, str(exc))
            return self._page(history_retention_form=form)
        if not change.saved and change.removes_more:
            confirm = HistoryRetentionForm(initial={**form.cleaned_data, "confirmed": True})
            return self._page(history_retention_form=confirm, history_change=change)
        if change.saved:
            messages.success(request, gettext(
                "Prediction history is now kept: %(setting)s. The next clean-up removes %(rows)s rows of %(runs)s "
                "runs.") % {"setting": change.retention.describe(), "rows": change.removal.rows,
                            "runs": change.removal.runs})
        else:
            messages.info(request, gettext("The retention setting was already this; nothing changed."))
        return redirect("prediction-settings", institution_slug=self.institution.slug)


class OutcomeMappingView(HistoryRetentionView):
    """Save what each recorded outcome means for training; every change is previewed first."""

    def post(self, request, *args, **kwargs):
        form = OutcomeMappingForm(request.POST)
        if not form.is_valid():
            return self._page(outcome_mapping_form=form)
        try:
            change = outcome_mapping_set(institution=self.institution, proposed=form.proposed(), actor=request.user,
                                         confirmed=form.cleaned_data["confirmed"])
        except OutcomeMappingInvalid as exc:
            form.add_error(None, str(exc))
            return self._page(outcome_mapping_form=form)
        if not change.changes_anything:
            messages.info(request, gettext("The outcome mapping was already this; nothing changed."))
        elif not change.saved:
            confirm = OutcomeMappingForm(initial=OutcomeMappingForm.initial_for(change.proposed.as_dict(),
                                                                                confirmed=True))
            return self._page(outcome_mapping_form=confirm, outcome_change=change)
        else:
            trained = sum(change.training(change.proposed).values())
            messages.success(request, gettext("Outcome mapping saved: the next retrain learns from %(n)s students. "
                                              "The live model is unchanged until then.") % {"n": trained})
        return redirect("prediction-settings", institution_slug=self.institution.slug)


class ConcernFeatureView(InstitutionPageMixin, View):
    """Switch the instructor-concerns feature on or off (the settings page shows what each does)."""

    required_capability = "manage_models"

    def post(self, request, *args, **kwargs):
        form = ConcernFeatureForm(request.POST)
        form.is_valid()  # a lone checkbox: absent means off
        enabled = bool(form.cleaned_data.get("enabled"))
        try:
            changed = concern_feature_set(institution=self.institution, enabled=enabled, actor=request.user)
        except ConcernFeatureRefused as exc:
            messages.error(request, str(exc))
            return redirect("prediction-settings", institution_slug=self.institution.slug)
        if not changed:
            if enabled:
                messages.info(request, gettext("The concern count was already on; nothing changed."))
            else:
                messages.info(request, gettext("The concern count was already off; nothing changed."))
        elif enabled:
            messages.success(request, gettext(
                "The feature %(key)s is in the data schema and every current student's count is written; the next "
                "retrain learns from it. Nobody was rescored and the live model is unchanged.")
                % {"key": CONCERNS_FEATURE_KEY})
        else:
            messages.success(request, gettext(
                "The feature %(key)s is retired: the next retrain leaves it out. Its stored values are kept, and a "
                "live model trained with it keeps reading current counts until then.")
                % {"key": CONCERNS_FEATURE_KEY})
        return redirect("prediction-settings", institution_slug=self.institution.slug)


class PredictionJobListView(InstitutionPageMixin, ListView):
    template_name = "predictions/job_list.html"
    required_capability = "view_aggregates"
    context_object_name = "jobs"
    paginate_by = 25

    def get_queryset(self):
        return prediction_job_list(institution=self.institution)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_manage"] = self.membership.can("manage_models")
        context["rescore_form"] = RescoreForm()
        return context


class JobProgressView(InstitutionPageMixin, DetailView):
    """The progress fragment htmx polls every second while a job is active."""

    template_name = "predictions/_job_progress.html"
    required_capability = "view_aggregates"
    context_object_name = "job"

    def get_object(self, queryset=None):
        job = prediction_job_list(institution=self.institution).filter(pk=self.kwargs["pk"]).first()
        if job is None:
            raise Http404("Not found.")
        return job


