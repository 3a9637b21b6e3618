"""Platform staff see model versions and settings (no student data: predictions are not listed)."""

from django.contrib import admin

from .models import ModelVersion, PredictionSettings


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["institution", "number", "status", "training_size", "trigger", "created_at", "promoted_at"]
    list_filter = ["status", "institution"]
    exclude = ["artifact"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "artifact"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PredictionSettings)
class PredictionSettingsAdmin(admin.ModelAdmin):
    list_display = ["institution", "flag_rule", "auto_promote", "rescore_schedule", "retrain_schedule"]
