"""Forms of the advisor's composite pages. Choice fields are filled from scoped selectors by the view,
never from a model's default manager (which would fail closed, or worse, read every institution)."""

from __future__ import annotations

from django import forms
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
        label="Email digest", widget=forms.RadioSelect,
        choices=[("daily", "Daily, each morning"), ("weekly", "Weekly, on Monday mornings"),
                 ("off", "Off: no digest emails")],
        help_text="Newly flagged students in your caseload, open alerts routed to you or your offices, and "
                  "follow-ups due today or overdue. An empty digest is not sent.",
    )
