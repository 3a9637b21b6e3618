"""The roster upload form: the export's zip or its CSV files, and which users.csv column holds the
student's external id."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

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
        label=_("OneRoster export"),
        help_text=_("The export's zip, or orgs.csv, academicSessions.csv, courses.csv, classes.csv, users.csv and "
                    "enrollments.csv (select them together)."),
    )
    student_id_field = forms.ChoiceField(
        label=_("Student id column of users.csv"),
        choices=[(name, name) for name in STUDENT_ID_FIELDS],
        help_text=_("Enrolled students are matched to the platform's students whose external id equals this column."),
        widget=forms.Select(attrs={"class": "form-select"}),
    )


class SurveyOpenForm(forms.Form):
    """What an administrator asks: the term, the words instructors read, the window and the choices.

    The rules (window length, active types, the term's institution) are checked by
    :func:`courses.surveys.survey_validate`; this form only reads the fields."""

    term = forms.ModelChoiceField(queryset=None, label=_("Term"), widget=forms.Select(attrs={"class": "form-select"}),
                                  help_text=_("Instructors teaching a section in this term are invited."))
    title = forms.CharField(max_length=200, label=_("Title"), help_text=_("In the email's subject and on the page."))
    message = forms.CharField(max_length=2000, required=False, label=_("Message to instructors"),
                              widget=forms.Textarea(attrs={"rows": 3}))
    opens_at = forms.DateTimeField(label=_("Opens"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                             format="%Y-%m-%dT%H:%M"))
    closes_at = forms.DateTimeField(label=_("Closes"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                               format="%Y-%m-%dT%H:%M"),
                                    help_text=_("At most 60 days after it opens; the links stop working then."))
    auto_remind_at = forms.DateTimeField(
        label=_("Automatic reminder (optional)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("One reminder goes by itself then, with a new link, to those who have not answered."))
    concern_type_ids = forms.TypedMultipleChoiceField(coerce=int, label=_("Concern types and kudos offered"),
                                                      widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, terms, concern_types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["term"].queryset = terms
        self.fields["concern_type_ids"].choices = [
            (t.pk, f"{t.label} ({t.get_kind_display().lower()})") for t in concern_types]


class ConcernTypeForm(forms.Form):
    label = forms.CharField(max_length=120, label=_("Label"))
    kind = forms.ChoiceField(choices=[("concern", _("Concern (becomes an alert)")), ("kudos", _("Kudos"))],
                             label=_("Kind"),
                             widget=forms.Select(attrs={"class": "form-select"}))
    description = forms.CharField(max_length=255, required=False, label=_("Description (optional)"))
