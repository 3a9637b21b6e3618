"""Checking, after the fact, whether the live model's predictions came true (docs/model_card.md,
"Did the predictions come true?").

Daily (beat), for each institution with a live model: compute its realised performance
(:func:`predictions.selectors.model_realised`), keep the summary on the version (``realised``),
and when the realised ROC-AUC of the most recent half-year with enough outcomes falls below the
institution's floor, and had not already, tell the administrators (``model_degraded`` signal: the
workspace notifies them in-app) and the integrators (``model.degraded`` webhook). It changes no
score and no model: an administrator decides (retrain, roll back, or look at the data).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from institutions.models import Institution
from institutions.webhooks import webhook_emit

from ..models import ModelVersion
from ..selectors import model_realised, model_version_live
from ..signals import model_degraded


def _latest_enough(report: dict) -> dict | None:
    for period in reversed(report["periods"]):
        if period["enough"]:
            return period
    return None


def realised_check(*, institution: Institution) -> dict | None:
    """Check the live model; returns the stored summary (None without a live model)."""
    version = model_version_live(institution=institution)
    if version is None:
        return None
    report = model_realised(institution=institution, version=version)
    latest = _latest_enough(report)
    auc = latest["roc_auc"]["value"] if latest else None
    degraded = auc is not None and auc < report["floor"]
    was_degraded = bool((version.realised or {}).get("degraded"))
    summary = {
        "checked_at": timezone.now().isoformat(), "floor": report["floor"], "degraded": degraded,
        "period": latest["period"] if latest else None, "roc_auc": latest["roc_auc"] if latest else None,
        "students": report["overall"]["students"],
    }
    ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(realised=summary)
    if degraded and not was_degraded:
        payload = {"model": {"number": version.number, "realised_roc_auc": auc, "floor": report["floor"],
                             "period": latest["period"], "students": latest["students"]}}
        with transaction.atomic():
            webhook_emit(institution=institution, event="model.degraded", payload=payload)
        transaction.on_commit(lambda: model_degraded.send(sender=ModelVersion, institution=institution,
                                                          version=version, summary=summary))
    return summary
