from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import ModelVersion, OutcomeClass, PredictionSettings
from .outcome_mapping import MAPPABLE_OUTCOMES, OUTCOME_NAMES
from .services.promotion import gate_override_problem


class PredictionSettingsForm(forms.ModelForm):
    class Meta:
        model = PredictionSettings
        fields = [
            "flag_rule", "flag_threshold", "flag_capacity", "flag_capacity_per_advisor", "flag_min_risk",
            "band_medium_from", "band_high_from",
            "auto_promote", "min_training_size", "max_auc_drop", "max_brier_increase", "max_fairness_gap",
            "realised_auc_floor",
            "min_fairness_group_size",
            "search_iterations",
            "rescore_schedule", "retrain_schedule", "schedule_hour", "rescore_after_import",
        ]
        # The fields' names as the page shows them (the model's help texts are translated there).
        labels = {
            "flag_rule": _("Flag rule"), "flag_threshold": _("Flag threshold"), "flag_capacity": _("Flag capacity"),
            "flag_capacity_per_advisor": _("Flag capacity per advisor"), "flag_min_risk": _("Flag min risk"),
            "band_medium_from": _("Band medium from"), "band_high_from": _("Band high from"),
            "auto_promote": _("Auto promote"), "min_training_size": _("Min training size"),
            "max_auc_drop": _("Max AUC drop"), "max_brier_increase": _("Max Brier increase"),
            "max_fairness_gap": _("Max fairness gap"), "realised_auc_floor": _("Realised ROC-AUC floor"),
            "min_fairness_group_size": _("Min fairness group size"), "search_iterations": _("Search iterations"),
            "rescore_schedule": _("Rescore schedule"), "retrain_schedule": _("Retrain schedule"),
            "schedule_hour": _("Schedule hour"), "rescore_after_import": _("Rescore after import"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Added later than the others: a form (or a client) that does not send it keeps the current floor.
        self.fields["realised_auc_floor"].required = False

    def clean_realised_auc_floor(self):
        value = self.cleaned_data.get("realised_auc_floor")
        return self.instance.realised_auc_floor if value is None else value


class ConcernFeatureForm(forms.Form):
    """Switch the instructor-concerns feature on or off (its own form: it changes the data schema)."""

    enabled = forms.BooleanField(
        required=False, label=_("Use the number of instructor concerns this term as a model feature"))


class HistoryRetentionForm(forms.Form):
    """How long the prediction history is kept (its own form: a shorter setting is previewed first)."""

    keep_all_days = forms.IntegerField(
        min_value=1, max_value=3650, label=_("Keep every scoring run for (days)"),
        error_messages={"required": _("Say for how many days every run is kept (1 to 3650).")})
    keep_monthly_months = forms.IntegerField(
        required=False, min_value=0, max_value=1200, label=_("Then keep the last run of each month for (months)"),
        help_text=_("Leave empty to keep one run per month forever; 0 keeps nothing past the days above."))
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


class OutcomeMappingForm(forms.Form):
    """What each recorded outcome means for training (its own form: a change is previewed first)."""

    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for value in MAPPABLE_OUTCOMES:
            self.fields[f"outcome_{value}"] = forms.ChoiceField(
                choices=OutcomeClass.choices, label=OUTCOME_NAMES.get(value, value),
                error_messages={"required": _("Choose what this outcome means for training."),
                                "invalid_choice": _("Choose did not complete, completed or not known.")})

    @staticmethod
    def initial_for(classes: dict[str, str], *, confirmed: bool = False) -> dict:
        return {"confirmed": confirmed, **{f"outcome_{value}": name for value, name in classes.items()}}

    def proposed(self) -> dict[str, str]:
        return {value: self.cleaned_data[f"outcome_{value}"] for value in MAPPABLE_OUTCOMES}


class DecisionForm(forms.Form):
    note = forms.CharField(max_length=300, required=False, label=_("Note (why)"))


class PromoteForm(DecisionForm):
    """Promotion; for a version that did not pass the gate, a ticked confirmation and a written reason."""

    confirm_failed_gate = forms.BooleanField(
        required=False, label=_("I have read the failed checks above and want this version live anyway"))
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Why it should go live despite the failed checks"),
        help_text=_("Stored with the version, your name and the time, and shown on its page."))

    def __init__(self, *args, version: ModelVersion, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version

    def clean(self):
        cleaned = super().clean()
        if self.version.gate_passed:
            return cleaned
        if not cleaned.get("confirm_failed_gate"):
            self.add_error("confirm_failed_gate", gettext("Tick the confirmation: this version did not pass the gate."))
        problem = gate_override_problem(version=self.version, reason=cleaned.get("reason") or "")
        if problem:
            self.add_error("reason", problem)
        return cleaned


class RejectForm(DecisionForm):
    confirm = forms.BooleanField(required=True, widget=forms.HiddenInput,
                                 error_messages={"required": _("Confirm the rejection on this page.")})


class RescoreForm(forms.Form):
    full = forms.BooleanField(required=False, label=_("Rescore everyone (not only students whose data changed)"))
