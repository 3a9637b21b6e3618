from django import forms

from .models import PredictionSettings


class PredictionSettingsForm(forms.ModelForm):
    class Meta:
        model = PredictionSettings
        fields = [
            "flag_rule", "flag_threshold", "flag_capacity", "band_medium_from", "band_high_from",
            "auto_promote", "min_training_size", "max_auc_drop", "max_fairness_gap", "search_iterations",
            "rescore_schedule", "retrain_schedule", "schedule_hour", "rescore_after_import",
        ]


class DecisionForm(forms.Form):
    note = forms.CharField(max_length=300, required=False, label="Note (why)")


class RescoreForm(forms.Form):
    full = forms.BooleanField(required=False, label="Rescore everyone (not only students whose data changed)")
