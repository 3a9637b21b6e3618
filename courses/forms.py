"""The roster upload form: the export's zip or its CSV files, and which users.csv column holds the
student's external id."""

from __future__ import annotations

from django import forms

from .oneroster import STUDENT_ID_FIELDS


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", _MultipleFileInput(attrs={"accept": ".zip,.csv"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class RosterUploadForm(forms.Form):
    files = _MultipleFileField(
        label="OneRoster export",
        help_text="The export's zip, or orgs.csv, academicSessions.csv, courses.csv, classes.csv, users.csv and "
                  "enrollments.csv (select them together).",
    )
    student_id_field = forms.ChoiceField(
        label="Student id column of users.csv",
        choices=[(name, name) for name in STUDENT_ID_FIELDS],
        help_text="Enrolled students are matched to the platform's students whose external id equals this column.",
        widget=forms.Select(attrs={"class": "form-select"}),
    )


class SurveyOpenForm(forms.Form):
    """What an administrator asks: the term, the words instructors read, the window and the choices.

    The rules (window length, active types, the term's institution) are checked by
    :func:`courses.surveys.survey_validate`; this form only reads the fields."""

    term = forms.ModelChoiceField(queryset=None, label="Term", widget=forms.Select(attrs={"class": "form-select"}),
                                  help_text="Instructors teaching a section in this term are invited.")
    title = forms.CharField(max_length=200, label="Title", help_text="In the email's subject and on the page.")
    message = forms.CharField(max_length=2000, required=False, label="Message to instructors",
                              widget=forms.Textarea(attrs={"rows": 3}))
    opens_at = forms.DateTimeField(label="Opens", widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                             format="%Y-%m-%dT%H:%M"))
    closes_at = forms.DateTimeField(label="Closes", widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                               format="%Y-%m-%dT%H:%M"),
                                    help_text="At most 60 days after it opens; the links stop working then.")
    auto_remind_at = forms.DateTimeField(
        label="Automatic reminder (optional)", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="One reminder goes by itself then, with a new link, to those who have not answered.")
    concern_type_ids = forms.TypedMultipleChoiceField(coerce=int, label="Concern types and kudos offered",
                                                      widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, terms, concern_types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["term"].queryset = terms
        self.fields["concern_type_ids"].choices = [
            (t.pk, f"{t.label} ({t.get_kind_display().lower()})") for t in concern_types]


class ConcernTypeForm(forms.Form):
    label = forms.CharField(max_length=120, label="Label")
    kind = forms.ChoiceField(choices=[("concern", "Concern (becomes an alert)"), ("kudos", "Kudos")],
                             widget=forms.Select(attrs={"class": "form-select"}))
    description = forms.CharField(max_length=255, required=False, label="Description (optional)")
