"""Forms of the import pages: the upload, and the column mapping built from the file's header."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .importing.mapping import (
    STUDENT_TARGETS,
    TARGET_LABELS,
    ColumnSpec,
    ImportMappingSpec,
    feature_key_for,
)
from .models import FeatureDefinition, FeatureKind, Outcome

_SELECT = forms.Select(attrs={"class": "form-select form-select-sm"})


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV or Excel (.xlsx) file"),
        help_text=_("Comma, semicolon, tab or | separated; UTF-8 (with or without BOM) or Windows-1252."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx"}),
    )


def _target_choices(definitions: list[FeatureDefinition]) -> list[tuple[str, str]]:
    choices = [("ignore", TARGET_LABELS["ignore"])]
    choices += [(target, TARGET_LABELS[target]) for target in STUDENT_TARGETS]
    choices.append(("new_feature", TARGET_LABELS["new_feature"]))
    if definitions:
        existing = [(f"feature:{d.key}", f"{d.label} ({d.key})") for d in definitions]
        choices.append((gettext("Existing feature"), existing))
    return choices


class ImportMappingForm(forms.Form):
    """One target (and, for a new feature, label and kind) per column; outcome words; id options."""

    def __init__(self, *args, header: list[str], suggestion: ImportMappingSpec, definitions: list[FeatureDefinition],
                 outcome_words: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        self.suggestion = suggestion
        choices = _target_choices(definitions)
        self.column_rows = []
        for index, name in enumerate(header):
            spec = suggestion.columns.get(name) or ColumnSpec(target="ignore")
            initial = f"feature:{spec.feature}" if spec.target == "feature" else spec.target
            self.fields[f"target_{index}"] = forms.ChoiceField(
                label=gettext("Column “%(name)s”") % {"name": name}, choices=choices, initial=initial,
                widget=_SELECT)
            self.fields[f"label_{index}"] = forms.CharField(
                label=gettext("Label for “%(name)s”") % {"name": name}, required=False, max_length=200,
                initial=spec.label or name,
                widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}))
            self.fields[f"kind_{index}"] = forms.ChoiceField(
                label=gettext("Kind of “%(name)s”") % {"name": name}, choices=FeatureKind.choices,
                initial=spec.kind or FeatureKind.CATEGORICAL, widget=_SELECT)
            self.column_rows.append((index, name))
        self.fields["id_columns"] = forms.MultipleChoiceField(
            label=_("Compose the id from several columns"), required=False, choices=[(h, h) for h in header],
            initial=suggestion.id_columns, widget=forms.CheckboxSelectMultiple,
            help_text=_("For files where one student appears once per module or term (e.g. OULAD): the id becomes "
                        "the values joined by “-”."),
        )
        self.fields["id_row_prefix"] = forms.CharField(
            label=_("Or number the rows, with this prefix"), required=False, max_length=40,
            initial=suggestion.id_row_prefix, widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
            help_text=_("Only for a first import into an institution with no students, from a file without any id "
                        "(e.g. the UCI data set): row 1 becomes PREFIX-00001. Later files must carry the students' "
                        "ids: row numbers would name other students."),
        )
        self.fields["decimal_comma"] = forms.BooleanField(
            label=_("Numbers use a decimal comma (3,5)"), required=False, initial=suggestion.decimal_comma,
            widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
            help_text=_("Otherwise only plain decimal notation is read as a number (12, 3.5); a value such as 1_9, "
                        "3,5 or 1.234,5 is reported as an error, never guessed."),
        )
        self.fields["program_from"] = forms.ChoiceField(
            label=_("Also show this feature column as the student's program"), required=False,
            choices=[("", gettext("(none)")), *[(h, h) for h in header]], initial=suggestion.program_from,
            widget=_SELECT,
            help_text=_("For a coded course or programme (e.g. the UCI data's Course): the feature keeps the code "
                        "for the model, and the lists, filters and profiles show its label as the program."),
        )
        self.outcome_words = outcome_words
        for position, word in enumerate(outcome_words):
            self.fields[f"outcome_{position}"] = forms.ChoiceField(
                label=gettext("Outcome “%(word)s”") % {"word": word},
                choices=[("", gettext("(not mapped)")), *Outcome.choices], required=False,
                initial=suggestion.outcome_values.get(word, ""), widget=_SELECT,
            )

    def to_spec(self) -> ImportMappingSpec:
        data = self.cleaned_data
        columns: dict[str, ColumnSpec] = {}
        id_columns = list(data.get("id_columns") or [])
        for index, name in self.column_rows:
            target = data[f"target_{index}"]
            suggested = self.suggestion.columns.get(name)
            if target.startswith("feature:"):
                columns[name] = ColumnSpec(target="feature", feature=target.split(":", 1)[1])
            elif target == "new_feature":
                keep = suggested if suggested is not None and suggested.target == "new_feature" else None
                kind = data[f"kind_{index}"]
                columns[name] = ColumnSpec(
                    target="new_feature", feature=keep.feature if keep else feature_key_for(name),
                    label=(data[f"label_{index}"] or name).strip(), kind=kind,
                    min_value=keep.min_value if keep and keep.kind == kind else None,
                    max_value=keep.max_value if keep and keep.kind == kind else None,
                    categories=keep.categories if keep and keep.kind == kind else [],
                    protected=keep.protected if keep else False, actionable=keep.actionable if keep else False,
                    unit=keep.unit if keep else "",
                )
            else:
                columns[name] = ColumnSpec(target=target)
        outcome_values = {word: data[f"outcome_{position}"] for position, word in enumerate(self.outcome_words)
                          if data.get(f"outcome_{position}")}
        return ImportMappingSpec(
            columns=columns, outcome_values=outcome_values, id_columns=id_columns,
            id_row_prefix="" if id_columns else (data.get("id_row_prefix") or "").strip(),
            delimiter=self.suggestion.delimiter, decimal_comma=bool(data.get("decimal_comma")),
            program_from=data.get("program_from") or "",
        )
