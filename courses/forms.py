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
