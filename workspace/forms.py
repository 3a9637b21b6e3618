"""Forms of the advisor's composite pages. Choice fields are filled from scoped selectors by the view,
never from a model's default manager (which would fail closed, or worse, read every institution)."""

from __future__ import annotations

from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class WorklistFilterForm(forms.Form):
    """The filters of the flagged list and the caseload (GET)."""

    q = forms.CharField(required=False, label=_("Search"), max_length=100)
    band = forms.ChoiceField(required=False, label=_("Band"),
                             choices=[("", _("Any band")), ("high", _("High")), ("medium", _("Medium")),
                                      ("low", _("Low"))])
    program = forms.ChoiceField(required=False, label=_("Program"))
    cohort = forms.ChoiceField(required=False, label=_("Cohort"))
    advisor = forms.ChoiceField(required=False, label=_("Advisor"))
    open_intervention = forms.ChoiceField(
        required=False, label=_("Open intervention"),
        choices=[("", _("Either")), ("yes", _("Has one open")), ("no", _("None open"))],
    )
    no_contact_days = forms.IntegerField(required=False, min_value=0, max_value=3650, label=_("No contact for (days)"))
    sort = forms.ChoiceField(required=False, label=_("Sort"))

    def __init__(self, *args, programs: list[str], cohorts: list[str], advisors: list[tuple[int, str]],
                 sorts: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["program"].choices = [("", _("Any program")), *[(p, p) for p in programs]]
        self.fields["cohort"].choices = [("", _("Any cohort")), *[(c, c) for c in cohorts]]
        self.fields["advisor"].choices = [("", _("Any advisor")), ("none", _("Unassigned")),
                                          *[(str(pk), name) for pk, name in advisors]]
        self.fields["sort"].choices = sorts


class RiskFeedbackForm(forms.Form):
    """ "This risk looks wrong" on the student profile; the service checks the rules (a note for "other")."""

    reason = forms.ChoiceField(label=_("What looks wrong?"), choices=())
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Note"),
        help_text=_("What you know that the model does not (required for 'other'). Administrators read this "
                    "beside the model's quality figures; it does not change the score."),
    )

    def __init__(self, *args, reason_choices: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = list(reason_choices)


class NotificationPreferenceForm(forms.Form):
    """How often the member's email digest comes, in this institution."""

    digest = forms.ChoiceField(
        label=_("Email digest"), widget=forms.RadioSelect,
        choices=[("daily", _("Daily, each morning")), ("weekly", _("Weekly, on Monday mornings")),
                 ("off", _("Off: no digest emails"))],
        help_text=_("Newly flagged students in your caseload, open alerts routed to you or your offices, and "
                    "follow-ups due today or overdue. An empty digest is not sent."),
    )


class ApplicantScoreForm(forms.Form):
    """One applicant's application-stage values: a field per feature the page offers (none
    required; a blank one is "not recorded", as the model allows). Every field is text: the
    applicant scoring service checks the values, as an import would, and names each problem."""

    ref = forms.CharField(required=False, max_length=100, label=_("Reference (optional)"),
                          help_text=_("Your own name for this applicant, shown with the result; not kept."))

    def __init__(self, *args, definitions, **kwargs):
        super().__init__(*args, **kwargs)
        self.definitions = list(definitions)
        language = get_language()
        for definition in self.definitions:
            # The institution's label and description in the reader's language, else the default ones.
            label = definition.label_in(language)
            label = f"{label} ({definition.unit})" if definition.unit else label
            if definition.kind == "numeric":
                attrs = {"step": "any", "inputmode": "decimal"}
                if definition.min_value is not None:
                    attrs["min"] = definition.min_value
                if definition.max_value is not None:
                    attrs["max"] = definition.max_value
                # Text, not a number field: the scoring service says what is wrong with a value.
                field = forms.CharField(required=False, max_length=100, label=label,
                                        widget=forms.NumberInput(attrs=attrs))
            elif definition.kind == "boolean":
                field = forms.CharField(required=False, max_length=10, label=label, widget=forms.Select(
                    choices=[("", _("Not recorded")), ("yes", _("Yes")), ("no", _("No"))]))
            else:
                choices = [(str(item["value"]), item.get("label") or str(item["value"]))
                           for item in definition.categories]
                widget = forms.Select(choices=[("", _("Not recorded")), *choices]) if choices else None
                field = forms.CharField(required=False, max_length=200, label=label, widget=widget)
            field.help_text = definition.description_in(language)
            self.fields[f"feature_{definition.key}"] = field
        self.feature_fields = [self[f"feature_{definition.key}"] for definition in self.definitions]

    def feature_values(self) -> dict[str, str]:
        """The typed values by feature key (blank ones left out: not recorded)."""
        return {definition.key: self.cleaned_data[f"feature_{definition.key}"] for definition in self.definitions
                if self.cleaned_data.get(f"feature_{definition.key}") not in (None, "")}

    def add_feature_errors(self, errors: dict[str, str]) -> None:
        for key, reason in errors.items():
            self.add_error(f"feature_{key}" if f"feature_{key}" in self.fields else None, reason)


class ApplicantFileForm(forms.Form):
    file = forms.FileField(
        label=_("CSV or Excel (.xlsx) file"),
        help_text=_("A header row, a “ref” column and one column per feature (its key or label), as in an import."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx"}),
    )
