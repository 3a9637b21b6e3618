"""Forms of the interventions app, also used on the workspace's student profile. Choice fields are filled
from scoped selectors by the view, never from a model's default manager (which would fail closed, or worse, read every
institution)."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from .models import InterventionOutcome


class InterventionForm(forms.Form):
    intervention_type = forms.TypedChoiceField(label="Type", coerce=int)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), initial=timezone.localdate)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=20000)
    confidential = forms.BooleanField(
        required=False, help_text="Only you and the institution's administrators will be able to read the notes."
    )
    follow_up_date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Follow up on",
        help_text="Leave empty if no follow-up is needed.",
    )

    def __init__(self, *args, type_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["intervention_type"].choices = type_choices


class InterventionCloseForm(forms.Form):
    outcome = forms.ChoiceField(choices=[("", "Choose how it ended"), *InterventionOutcome.choices])
    outcome_notes = forms.CharField(
        label="What happened", widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20000
    )


class FlagForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
        help_text="Why does this student need attention? Colleagues will see this.",
    )
    assigned_to = forms.ChoiceField(
        label="Route to", required=False,
        help_text="Someone to follow it up (with need-to-know access on, they see this student while it is open).",
    )

    def __init__(self, *args, advisor_choices: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].choices = [("", "Nobody in particular"),
                                              *[(str(pk), name) for pk, name in advisor_choices]]


class FlagResolveForm(forms.Form):
    resolution = forms.CharField(
        label="How was it resolved?", widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
        help_text="The person who raised the flag will see this.",
    )


class CaseloadAssignForm(forms.Form):
    """Who gets the ticked students; unassigning is an explicit choice, never the default."""

    advisor = forms.ChoiceField(help_text="Choose “Nobody” to unassign.")
    students = forms.CharField(widget=forms.MultipleHiddenInput, required=False)

    def __init__(self, *args, advisor_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["advisor"].choices = [("", "Choose an advisor…"), ("none", "Nobody (unassign)"),
                                          *[(str(pk), name) for pk, name in advisor_choices]]

    def clean_advisor(self) -> int | None:
        value = self.cleaned_data["advisor"]
        return None if value == "none" else int(value)


class InterventionTypeForm(forms.Form):
    key = forms.SlugField(max_length=60, help_text="Short machine name, e.g. home_visit")
    label = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AccessGrantForm(forms.Form):
    """An administrator grants one advisor one student under need-to-know access."""

    student = forms.CharField(label="Student id", max_length=100,
                              help_text="The student information system's id (as on the student's page).")
    user = forms.TypedChoiceField(label="Advisor", coerce=int)
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why they need to see this student (kept with the grant).")
    expires_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until",
                                 help_text="Leave empty to keep it until revoked. Ends at the start of that day.")

    def __init__(self, *args, advisor_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "Choose an advisor…"), *advisor_choices]
