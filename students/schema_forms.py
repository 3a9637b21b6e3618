"""The form of the schema page's feature edit: what an administrator may change on a feature."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .feature_translations import TRANSLATED_PARTS, language_name, translated_languages, translation_value
from .models import FeatureDefinition, FeatureKind, FeatureStage
from .stages import feature_stage_of


def categories_to_text(categories: list[dict]) -> str:
    return "\n".join(
        item["value"] if (item.get("label") or item["value"]) == item["value"] else f"{item['value']} = {item['label']}"
        for item in categories
    )


def categories_from_text(text: str) -> list[dict]:
    categories = []
    for line in text.splitlines():
        if not line.strip():
            continue
        value, _sep, label = line.partition("=")
        categories.append({"value": value.strip(), "label": label.strip() or value.strip()})
    return categories


class FeatureEditForm(forms.Form):
    """Fields for the feature's kind only: a range for numbers, categories for categorical ones."""

    label = forms.CharField(label=_("Label"), max_length=FeatureDefinition._meta.get_field("label").max_length)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                  max_length=5000)
    unit = forms.CharField(label=_("Unit"), required=False,
                           max_length=FeatureDefinition._meta.get_field("unit").max_length)
    min_value = forms.FloatField(required=False, label=_("Smallest valid value"),
                                 help_text=_("Leave empty for no lower bound."))
    max_value = forms.FloatField(required=False, label=_("Largest valid value"),
                                 help_text=_("Leave empty for no upper bound."))
    categories = forms.CharField(
        label=_("Categories"), required=False, widget=forms.Textarea(attrs={"rows": 6}), max_length=100_000,
        help_text=_("One category a line: the value as stored, optionally ' = ' and the label shown "
                    "(e.g. 33 = Agronomy). Leave empty to accept any value."),
    )
    protected = forms.BooleanField(
        label=_("Protected"), required=False,
        help_text=_("Not a model input; used for the fairness audit (gender, age, nationality...)."),
    )
    actionable = forms.BooleanField(label=_("Actionable"), required=False,
                                     help_text=_("Something an advisor can influence (what-if)."))
    known_from = forms.ChoiceField(
        label=_("Known from"), required=False,  # not sent: the stage stays as it is
        help_text=_("The stage of a student's path from which this value is known. A stage's model learns only "
                    "from the features known at or before it."),
    )
    retired = forms.BooleanField(
        required=False, label=_("Retired"),
        help_text=_("No longer a model input; its stored values and history are kept. Untick to restore it."),
    )

    def __init__(self, *args, definition: FeatureDefinition, stages: list[FeatureStage], **kwargs):
        kwargs.setdefault("initial", {
            "known_from": feature_stage_of(definition, stages).key,
            "label": definition.label, "description": definition.description, "unit": definition.unit,
            "min_value": definition.min_value, "max_value": definition.max_value,
            "categories": categories_to_text(definition.categories), "protected": definition.protected,
            "actionable": definition.actionable, "retired": definition.is_retired,
        })
        super().__init__(*args, **kwargs)
        self.fields["known_from"].choices = [(stage.key, stage.label) for stage in stages]
        self._add_translation_fields(definition)
        if definition.kind != FeatureKind.NUMERIC:
            del self.fields["min_value"], self.fields["max_value"], self.fields["unit"]
        if definition.kind != FeatureKind.CATEGORICAL:
            del self.fields["categories"]

    def _add_translation_fields(self, definition: FeatureDefinition) -> None:
        """A label and a description per other language of the pages, after the default ones."""
        for language in translated_languages():
            names = {"language": language_name(language)}
            for part, longest in TRANSLATED_PARTS.items():
                name = f"{part}_{language}"
                if part == "label":
                    field = forms.CharField(
                        required=False, max_length=longest, label=gettext("Label in %(language)s") % names,
                        help_text=gettext("Shown to readers in %(language)s; leave empty to show the default "
                                          "label.") % names)
                else:
                    field = forms.CharField(
                        required=False, max_length=longest, widget=forms.Textarea(attrs={"rows": 2}),
                        label=gettext("Description in %(language)s") % names)
                self.fields[name] = field
                self.initial.setdefault(name, translation_value(definition.translations, name))
        order = ["label", "description", *(f"{part}_{language}" for language in translated_languages()
                                           for part in TRANSLATED_PARTS)]
        self.order_fields(order)

    def clean(self):
        cleaned = super().clean()
        if "categories" in self.fields and "categories" in cleaned:
            cleaned["categories"] = categories_from_text(cleaned["categories"] or "")
        return cleaned

    def edit_data(self) -> dict:
        """The cleaned values as the schema service takes them."""
        data = {name: self.cleaned_data[name] for name in self.fields}
        if not data.get("known_from"):
            data.pop("known_from", None)
        return data
