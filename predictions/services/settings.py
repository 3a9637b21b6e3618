"""An institution's prediction settings: saving them keeps its schedules in line."""

from __future__ import annotations

from django.db import transaction

from institutions.models import Institution

from ..models import PredictionSettings
from ..selectors import prediction_settings_get
from .schedules import prediction_schedule_sync


def prediction_settings_update(*, institution: Institution, data: dict) -> PredictionSettings:
    """Validate and save the institution's prediction settings, then bring its schedules in line."""
    switched_elsewhere = sorted(name for name in data if name.startswith("concerns_feature"))
    if switched_elsewhere:
        # It changes the data schema and students' values: services.concern_feature does that and records who.
        raise ValueError(f"{', '.join(switched_elsewhere)} is switched by concern_feature_set, not here")
    settings = prediction_settings_get(institution=institution)
    for name, value in data.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["institution"])
    with transaction.atomic():
        settings.save()
        prediction_schedule_sync(institution=institution, settings=settings)
    return settings
