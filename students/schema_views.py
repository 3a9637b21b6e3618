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
from .models import ChangeSource, FeatureKind
from .schema_forms import FeatureEditForm
from .selectors import access_feature_definition, feature_definition_changes, feature_definition_list


def _review_token(preview: services.FeatureEditPreview) -> str:
    """Names the exact review a person saw, so a save applies only what was shown."""
    shown = orjson.dumps([preview.changes, preview.stored_values_outside], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(shown).hexdigest()[:32]


class FeatureSchemaView(InstitutionPageMixin, TemplateView):
    template_name = "students/feature_schema.html"
    required_capability = "manage_data"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["features"] = list(feature_definition_list(institution=self.institution))
        context["changes"] = feature_definition_changes(institution=self.institution, limit=25)
        return context


class FeatureEditView(InstitutionPageMixin, TemplateView):
    template_name = "students/feature_edit.html"
    required_capability = "manage_data"

    def get_definition(self):
        return access_feature_definition(institution=self.institution, feature_definition_id=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        definition = self.get_definition()
        form = FeatureEditForm(definition=definition)
        if request.GET.get("use_seen_range") and definition.range_unconfirmed:
            # The range seen in the file, filled in for the administrator to review and save.
            form.initial.update(min_value=definition.seen_min_value, max_value=definition.seen_max_value)
        return self._render(definition, form)

    def post(self, request, *args, **kwargs):
        definition = self.get_definition()
        form = FeatureEditForm(request.POST, definition=definition)
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
            messages.success(request, gettext("Saved the changes to %(label)s. Protected, actionable and retired "
                                              "changes apply at the next retrain.") % {"label": definition.label})
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
