"""Forms of the interventions app, also used on the workspace's student profile. Choice fields are filled
from scoped selectors by the view, never from a model's default manager (which would fail closed, or worse, read every
institution)."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import AlertOutcome, InterventionOutcome, RouteTarget


class InterventionForm(forms.Form):
    intervention_type = forms.TypedChoiceField(label=_("Type"), coerce=int)
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}), initial=timezone.localdate)
    notes = forms.CharField(label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False,
                            max_length=20000)
    confidential = forms.BooleanField(
        label=_("Confidential"), required=False,
        help_text=_("Only you and the institution's administrators will be able to read the notes."),
    )
    follow_up_date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("Follow up on"),
        help_text=_("Leave empty if no follow-up is needed."),
    )

    def __init__(self, *args, type_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["intervention_type"].choices = type_choices


class InterventionCloseForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"),
                                choices=[("", _("Choose how it ended")), *InterventionOutcome.choices])
    outcome_notes = forms.CharField(
        label=_("What happened"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20000
    )


class FlagForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
        help_text=_("Why does this student need attention? Colleagues will see this."),
    )
    assigned_to = forms.ChoiceField(
        label=_("Route to"), required=False,
        help_text=_("Someone to follow it up (with need-to-know access on, they see this student while it is open)."),
    )

    def __init__(self, *args, advisor_choices: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].choices = [("", _("Nobody in particular")),
                                              *[(str(pk), name) for pk, name in advisor_choices]]


class FlagResolveForm(forms.Form):
    resolution = forms.CharField(
        label=_("How was it resolved?"), widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
        help_text=_("The person who raised the flag will see this."),
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
    key = forms.SlugField(label=_("Key"), max_length=60, help_text=_("Short machine name, e.g. home_visit"))
    label = forms.CharField(label=_("Label"), max_length=120)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AccessGrantForm(forms.Form):
    """An administrator grants one advisor one student under need-to-know access."""

    student = forms.CharField(label=_("Student id"), max_length=100,
                              help_text=_("The student information system's id (as on the student's page)."))
    user = forms.TypedChoiceField(label=_("Advisor"), coerce=int)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Why they need to see this student (kept with the grant)."))
    expires_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("Until"),
                                 help_text=_("Leave empty to keep it until revoked. Ends at the start of that day."))

    def __init__(self, *args, advisor_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", _("Choose an advisor…")), *advisor_choices]


# --- alerts ---------------------------------------------------------------------------------------

def _with_blank(choices, blank: str) -> list[tuple[str, str]]:
    return [("", blank), *[(str(pk), label) for pk, label in choices]]


class AlertRaiseForm(forms.Form):
    """Staff raise an alert on a student's profile; it is routed like an instructor's."""

    concern_type = forms.ChoiceField(label=_("Concern"))
    comment = forms.CharField(label=_("What you noticed"), widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
                              help_text=_("Whoever the alert is routed to reads this."))

    def __init__(self, *args, concern_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["concern_type"].choices = _with_blank(concern_choices, _("Choose a concern…"))


class AlertNoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, required=False)


class AlertContactForm(forms.Form):
    note = forms.CharField(label=_("How you contacted the student"), widget=forms.Textarea(attrs={"rows": 2}),
                           max_length=5000)


class AlertReferForm(forms.Form):
    to_office = forms.ChoiceField(label=_("Refer to an office"), required=False)
    to_user = forms.ChoiceField(label=_("or to a person"), required=False)
    note = forms.CharField(label=_("Why (they read this)"), widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
                           required=False)

    def __init__(self, *args, office_choices, user_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_office"].choices = _with_blank(office_choices, _("No office"))
        self.fields["to_user"].choices = _with_blank(user_choices, _("No person"))


class AlertCloseForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"),
                                choices=[("", _("Choose how it ended")), *AlertOutcome.choices])
    notes = forms.CharField(label=_("What was done (not sent to the instructor)"), max_length=20000, required=False,
                            widget=forms.Textarea(attrs={"rows": 2}))


class OfficeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    email = forms.EmailField(label=_("Email"), required=False,
                             help_text=_("The office's shared address, if it has one."))
    description = forms.CharField(label=_("Description"), max_length=255, required=False)


class OfficeMemberForm(forms.Form):
    user = forms.ChoiceField(label=_("Add a member"))

    def __init__(self, *args, user_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = _with_blank(user_choices, _("Choose a member…"))


class AlertRuleForm(forms.Form):
    concern_type = forms.ChoiceField(label=_("Concern type"), required=False)
    program = forms.CharField(label=_("Program"), max_length=200, required=False,
                              help_text=_("Empty: any program. As in the student data."))
    target = forms.ChoiceField(label=_("Send to"), choices=RouteTarget.choices)
    user = forms.ChoiceField(label=_("Person (when sending to a person)"), required=False)
    office = forms.ChoiceField(label=_("Office (when sending to an office)"), required=False)

    def __init__(self, *args, concern_choices, user_choices, office_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["concern_type"].choices = _with_blank(concern_choices, _("Any concern"))
        self.fields["user"].choices = _with_blank(user_choices, "—")
        self.fields["office"].choices = _with_blank(office_choices, "—")


class AlertRulePreviewForm(forms.Form):
    student = forms.CharField(label=_("Student id"), max_length=100,
                              help_text=_("An example student's id (as on their page)."))
    concern_type = forms.ChoiceField(label=_("Concern"))

    def __init__(self, *args, concern_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["concern_type"].choices = _with_blank(concern_choices, _("Choose a concern…"))
