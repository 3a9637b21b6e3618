"""The institution's beat entries (django-celery-beat rows), kept in line with its settings."""

from __future__ import annotations

import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

from institutions.models import Institution

from ..models import PredictionSettings
from ..selectors import SCHEDULED_TASKS, periodic_task_name


def prediction_schedule_sync(*, institution: Institution, settings: PredictionSettings) -> None:
    """Create, change or remove the institution's beat entries (django-celery-beat rows)."""
    for kind, frequency in (("rescore", settings.rescore_schedule), ("retrain", settings.retrain_schedule)):
        name = periodic_task_name(institution, kind)
        if frequency == "off":
            PeriodicTask.objects.filter(name=name).delete()
            continue
        # Retraining runs an hour after rescoring would, so the two never compete at night.
        hour = (settings.schedule_hour + (1 if kind == "retrain" else 0)) % 24
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute="0", hour=str(hour),
            day_of_week="1" if frequency == "weekly" else "*",
            day_of_month="1" if frequency == "monthly" else "*",
            month_of_year="*", timezone=institution.timezone,
        )
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": SCHEDULED_TASKS[kind], "crontab": crontab, "interval": None,
                      "kwargs": json.dumps({"institution_id": institution.pk}), "enabled": True,
                      "description": f"{kind} for {institution.name} ({frequency})"},
        )


def prediction_schedules_remove(*, institution: Institution) -> int:
    """A removed institution's beat entries go with it (they are named by its id, not linked to it,
    so nothing else would remove them, and a later schedule page could show a stale one)."""
    names = [periodic_task_name(institution, kind) for kind in SCHEDULED_TASKS]
    removed, _ = PeriodicTask.objects.filter(name__in=names).delete()
    return removed
