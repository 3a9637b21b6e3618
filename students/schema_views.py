"""The schema page: administrators edit each feature (label, description, unit, valid range or
categories, protected/actionable, retired), always through a review of what the edit changes and
how many stored values a new range refuses. Thin: the rules are in ``students.services``."""

from __future__ import annotations

import hashlib

import orjson
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.views.generic import TemplateView

from institutions.view_mixins import InstitutionPageMixin

from . import services
from . import stages as stage_services
from .models import ChangeSource, FeatureKind
from .schema_forms import FeatureEditForm
from .selectors import access_feature_definition, feature_definition_changes
from .stages import feature_stage_list


def _review_token(preview: services.FeatureEditPreview) -> str:
    """Names the exact review a person saw, so a save applies only what was shown."""
    shown = orjson.dumps([preview.changes, preview.stored_values_outside], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(shown).hexdigest()[:32]


class FeatureSchemaView(InstitutionPageMixin, TemplateView):
    template_name = "students/feature_schema.html"
    required_capability = "manage_data"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["features"] = stage_services.feature_definitions_with_stage(institution=self.institution)
        context["changes"] = feature_definition_changes(institution=self.institution, limit=25)
        return context


class FeatureEditView(InstitutionPageMixin, TemplateView):
    template_name = "students/feature_edit.html"
    required_capability = "manage_data"

    def get_definition(self):
        return access_feature_definition(institution=self.institution, feature_definition_id=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        definition = self.get_definition()
        form = FeatureEditForm(definition=definition, stages=feature_stage_list(institution=self.institution))
        if request.GET.get("use_seen_range") and definition.range_unconfirmed:
            # The range seen in the file, filled in for the administrator to review and save.
            form.initial.update(min_value=definition.seen_min_value, max_value=definition.seen_max_value)
        return self._render(definition, form)

    def post(self, request, *args, **kwargs):
        definition = self.get_definition()
        form = FeatureEditForm(request.POST, definition=definition,
                               stages=feature_stage_list(institution=self.institution))
        if not form.is_valid():
            return self._render(definition, form, status=400)
        try:
            preview = services.feature_definition_edit_preview(
                institution=self.institution, definition=definition, data=form.edit_data())
        except services.FeatureDefinitionInvalid as exc:
            for name, reasons in exc.errors.items():
                form.add_error(name if name in form.fields else None, reasons)
            return self._render(definition, form, status=400)
        if not preview.changes:
            messages.info(request, gettext("Nothing changed on %(label)s.") % {"label": definition.label})
            return HttpResponseRedirect(reverse("feature-schema", args=[self.institution.slug]))
        token = _review_token(preview)
        if request.POST.get("review") != token:
            # First the review: what changes, and how many stored values a new range refuses.
            return self._render(definition, form, preview=preview, token=token)
        services.feature_definition_edit(institution=self.institution, definition=definition,
                                         data=form.edit_data(), actor=request.user, source=ChangeSource.WEB)
        if preview.applies_at_retrain:
            messages.success(request, gettext("Saved the changes to %(label)s. Protected, actionable, retired and "
                                              "known-from changes apply at the next retrain.")
                             % {"label": definition.label})
        else:
            messages.success(request, gettext("Saved the changes to %(label)s.") % {"label": definition.label})
        return HttpResponseRedirect(reverse("feature-schema", args=[self.institution.slug]))

    def _render(self, definition, form, *, preview=None, token="", status=200):
        context = self.get_context_data(
            feature=definition, form=form, preview=preview, review_token=token,
            is_numeric=definition.kind == FeatureKind.NUMERIC,
            changes=feature_definition_changes(institution=self.institution, feature=definition, limit=10),
        )
        return self.render_to_response(context, status=status)


class FeatureStagesView(InstitutionPageMixin, TemplateView):
    """The institution's stages: add, rename, move and remove, each through a review of what it changes."""

    template_name = "students/feature_stages.html"
    required_capability = "manage_data"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        stages = feature_stage_list(institution=self.institution)
        usage = stage_services.feature_stage_usage(institution=self.institution, stages=stages)
        context["stages"] = [(stage, usage[stage.pk]) for stage in stages]
        preview = kwargs.get("preview")
        if preview is not None and "order" in preview.changes:
            labels = {stage.key: stage.label for stage in stages}
            if "created" in preview.changes:
                labels[preview.stage_key] = preview.changes["created"][1]
            context["order_labels"] = [labels.get(key, key) for key in preview.changes["order"][1]]
        context["changes"] = stage_services.feature_stage_changes(institution=self.institution, limit=25)
        return context

    def post(self, request, *args, **kwargs):
        fields = {name: request.POST.get(name, "")[:200] for name in ("action", "stage_key", "key", "label")}
        try:
            preview = stage_services.feature_stage_edit_preview(institution=self.institution, **fields)
        except stage_services.FeatureStageInvalid as exc:
            return self.render_to_response(self.get_context_data(errors=exc.errors, submitted=fields), status=400)
        if not preview.changes:
            messages.info(request, gettext("Nothing changed."))
            return HttpResponseRedirect(reverse("feature-stages", args=[self.institution.slug]))
        token = hashlib.sha256(orjson.dumps(preview.changes, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        if request.POST.get("review") != token:
            return self.render_to_response(self.get_context_data(preview=preview, review_token=token,
                                                                 submitted=fields))
        try:
            stage_services.feature_stage_edit(institution=self.institution, actor=request.user,
                                              source=ChangeSource.WEB, **fields)
        except stage_services.FeatureStageInvalid as exc:  # someone else changed the stages meanwhile
            return self.render_to_response(self.get_context_data(errors=exc.errors, submitted=fields), status=400)
        messages.success(request, gettext("Saved the change to the stages. Models learn from it at the next retrain."))
        return HttpResponseRedirect(reverse("feature-stages", args=[self.institution.slug]))
