"""Decisions on a model version: promote (the previous live one retires), reject, roll back."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from institutions.models import Institution

from ..models import ModelStatus, ModelVersion
from ..selectors import model_version_rollback_target, prediction_settings_get
from .requests import rescore_request
from .schedules import prediction_schedule_sync


class ModelDecisionError(ValueError):
    """A promote/reject/rollback that does not apply to the version's current state."""


def _lock_versions(institution: Institution) -> None:
    # Serialise decisions per institution: two admins promoting at once cannot both win.
    list(ModelVersion.objects.for_institution(institution).select_for_update().values_list("pk", flat=True))


def model_version_promote(
    *, institution: Institution, version: ModelVersion, user=None, note: str = "", rescore: bool = True
) -> ModelVersion:
    """Make ``version`` the live model (the previous live one is retired) and queue a rescore."""
    with transaction.atomic():
        _lock_versions(institution)
        version = ModelVersion.objects.for_institution(institution).defer("artifact").get(pk=version.pk)
        if version.status == ModelStatus.LIVE:
            raise ModelDecisionError(f"model v{version.number} is already live")
        if version.status == ModelStatus.REJECTED and user is None:
            raise ModelDecisionError(f"model v{version.number} was rejected")
        now = timezone.now()
        ModelVersion.objects.for_institution(institution).filter(status=ModelStatus.LIVE).update(
            status=ModelStatus.RETIRED, updated_at=now
        )
        ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(
            status=ModelStatus.LIVE, promoted_at=now, decided_by=user, decided_at=now,
            decision_note=note[:300], updated_at=now,
        )
        if rescore:
            rescore_request(institution=institution, created_by=user, triggered_by="promotion")
        # With a live model the schedules matter: make sure beat has them (the defaults until an
        # admin changes them), not only once someone has saved the settings page.
        prediction_schedule_sync(institution=institution, settings=prediction_settings_get(institution=institution))
    version.refresh_from_db()
    return version


def model_version_reject(*, institution: Institution, version: ModelVersion, user=None, note: str = "") -> ModelVersion:
    with transaction.atomic():
        _lock_versions(institution)
        version = ModelVersion.objects.for_institution(institution).defer("artifact").get(pk=version.pk)
        if version.status != ModelStatus.CANDIDATE:
            raise ModelDecisionError(f"only a candidate can be rejected; model v{version.number} is {version.status}")
        now = timezone.now()
        ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(
            status=ModelStatus.REJECTED, decided_by=user, decided_at=now, decision_note=note[:300], updated_at=now
        )
    version.refresh_from_db()
    return version


def model_version_rollback(*, institution: Institution, user=None) -> ModelVersion:
    """Put the previously live version back in production, in one action."""
    target = model_version_rollback_target(institution=institution)
    if target is None:
        raise ModelDecisionError("there is no earlier live version to roll back to")
    return model_version_promote(institution=institution, version=target, user=user, note="rollback")
