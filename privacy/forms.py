"""The retention rules form and the erasure confirmation."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import MAX_RETENTION_DAYS, RetentionPolicy
from .retention import RetentionRuleError, parse_term_end_dates


class RetentionPolicyForm(forms.ModelForm):
    term_end_dates_text = forms.CharField(
        required=False, label=_("Term end days (MM-DD, comma separated)"),
        help_text=_("Flags still open that were raised before the latest of these days are closed, e.g. 01-31, 07-15."),
    )

    class Meta:
        model = RetentionPolicy
        fields = ["erase_after_days", "close_flags_after_days", "enabled", "run_hour"]
        labels = {
            "erase_after_days": _("Erase students this many days after their outcome date"),
            "close_flags_after_days": _("Close flags open longer than this many days"),
            "enabled": _("Run these rules every day"),
            "run_hour": _("Hour of the daily run (institution's time zone)"),
        }
        help_texts = {
            "erase_after_days": _("Erase a student this many days after the date of their outcome (graduated, dropped "
                                  "out, transferred or other). Blank: never erase automatically."),
            "close_flags_after_days": _("Close a flag still open this many days after it was raised. Blank: never."),
            "enabled": _("Run these rules every day (at the hour below, in the institution's time zone)."),
        }
        widgets = {
            "erase_after_days": forms.NumberInput(attrs={"min": 1, "max": MAX_RETENTION_DAYS}),
            "close_flags_after_days": forms.NumberInput(attrs={"min": 1, "max": MAX_RETENTION_DAYS}),
            "run_hour": forms.NumberInput(attrs={"min": 0, "max": 23}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["term_end_dates_text"].initial = ", ".join(self.instance.term_end_dates or [])

    def clean_term_end_dates_text(self):
        try:
            return parse_term_end_dates(self.cleaned_data.get("term_end_dates_text", ""))
        except RetentionRuleError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("enabled") and not (cleaned.get("erase_after_days") or cleaned.get("close_flags_after_days")
                                           or cleaned.get("term_end_dates_text")):
            raise forms.ValidationError(_("Set at least one rule before turning the daily run on."))
        return cleaned

    def save(self, commit=True):
        self.instance.term_end_dates = self.cleaned_data["term_end_dates_text"]
        return super().save(commit=commit)


class ErasureConfirmForm(forms.Form):
    confirm_external_id = forms.CharField(
        max_length=100, label=_("Type the student's external id to confirm"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, external_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.external_id = external_id

    def clean_confirm_external_id(self):
        typed = self.cleaned_data["confirm_external_id"].strip()
        if typed != self.external_id:
            raise forms.ValidationError(_("That is not this student's external id; nothing was erased. "
                                          "Type it exactly as shown above."))
        return typed
