"""Decisions on a model version: promote (the previous live one retires), reject, roll back."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from institutions.models import Institution

from ..models import ModelStatus, ModelVersion
from ..selectors import (
    model_version_rollback_target,
    model_version_stage,
    model_version_stage_q,
    prediction_settings_get,
)
from .requests import rescore_request
from .schedules import prediction_schedule_sync


class ModelDecisionError(ValueError):
    """A promote/reject/rollback that does not apply to the version's current state."""


class GateOverrideRequired(ModelDecisionError):
    """Promoting a version that did not pass the gate needs a written reason (and, on a page, a confirmation)."""

    code = "gate_override_reason_required"


# The notes the platform itself writes on a decision (stored in English, shown in the reader's
# language: see predictions/templatetags/model_pages.py); a person's note is shown as written.
ROLLBACK_NOTE = gettext_noop("rollback")
AUTO_PROMOTION_NOTE = gettext_noop("passed the promotion gate")
SYSTEM_NOTES = (ROLLBACK_NOTE, AUTO_PROMOTION_NOTE)

# Long enough that "ok" or "." is not accepted as a reason someone will read later.
MIN_OVERRIDE_REASON_CHARS = 10


def gate_override_problem(*, version: ModelVersion, reason: str) -> str | None:
    """Why ``reason`` does not allow promoting ``version``; None when it may be promoted."""
    if version.gate_passed:
        return None
    if len(reason.strip()) < MIN_OVERRIDE_REASON_CHARS:
        values = {"number": version.number, "count": MIN_OVERRIDE_REASON_CHARS}
        if version.gate:
            return gettext("model v%(number)s did not pass the promotion gate: promoting it anyway needs a written "
                           "reason of at least %(count)s characters, which is stored with your name and the time"
                           ) % values
        return gettext("model v%(number)s has no promotion gate verdict: promoting it anyway needs a written reason "
                       "of at least %(count)s characters, which is stored with your name and the time") % values
    return None


def _lock_versions(institution: Institution) -> None:
    # Serialise decisions per institution: two admins promoting at once cannot both win.
    list(ModelVersion.objects.for_institution(institution).select_for_update().values_list("pk", flat=True))


def model_version_promote(
    *, institution: Institution, version: ModelVersion, user=None, note: str = "", rescore: bool = True,
    gate_override_reason: str = "",
) -> ModelVersion:
    """Make ``version`` the live model (the previous live one is retired) and queue a rescore.

    A version that did not pass the gate needs ``gate_override_reason`` (raises
    GateOverrideRequired otherwise, changing nothing); the reason is stored with ``user`` and the time.
    """
    return _promote(institution=institution, version=version, user=user, note=note, rescore=rescore,
                    gate_override_reason=gate_override_reason, check_gate=True)


def _promote(*, institution: Institution, version: ModelVersion, user, note: str, rescore: bool,
             gate_override_reason: str, check_gate: bool) -> ModelVersion:
    with transaction.atomic():
        _lock_versions(institution)
        version = ModelVersion.objects.for_institution(institution).defer("artifact").get(pk=version.pk)
        if version.status == ModelStatus.LIVE:
            raise ModelDecisionError(gettext("model v%(number)s is already live") % {"number": version.number})
        if version.status == ModelStatus.REJECTED and user is None:
            raise ModelDecisionError(gettext("model v%(number)s was rejected") % {"number": version.number})
        problem = gate_override_problem(version=version, reason=gate_override_reason) if check_gate else None
        if problem:
            raise GateOverrideRequired(problem)
        now = timezone.now()
        override = {}
        if check_gate and not version.gate_passed:
            reason = gate_override_reason.strip()
            override = {"gate_override_reason": reason, "gate_overridden_by": user, "gate_overridden_at": now}
            note = note or reason
        # Only the live model of the same stage retires: each stage keeps its own live model.
        stage = model_version_stage(institution=institution, version=version)
        ModelVersion.objects.for_institution(institution).filter(
            model_version_stage_q(institution=institution, stage=stage), status=ModelStatus.LIVE,
        ).update(status=ModelStatus.RETIRED, updated_at=now)
        ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(
            status=ModelStatus.LIVE, promoted_at=now, decided_by=user, decided_at=now,
            decision_note=note[:300], updated_at=now, **override,
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
            raise ModelDecisionError(gettext("only a candidate can be rejected; model v%(number)s is %(status)s")
                                     % {"number": version.number, "status": str(version.get_status_display()).lower()})
        now = timezone.now()
        ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(
            status=ModelStatus.REJECTED, decided_by=user, decided_at=now, decision_note=note[:300], updated_at=now
        )
    version.refresh_from_db()
    return version


def model_version_rollback(*, institution: Institution, user=None, stage=None) -> ModelVersion:
    """Put the previously live version of ``stage`` back in production, in one action (without a
    stage: of the stage whose live model scores the students).

    No gate override is asked for: the target was live before, so it passed the gate or an
    administrator's override of it is already recorded on it.
    """
    target = model_version_rollback_target(institution=institution, stage=stage)
    if target is None:
        raise ModelDecisionError(gettext("there is no earlier live version to roll back to"))
    return _promote(institution=institution, version=target, user=user, note=ROLLBACK_NOTE, rescore=True,
                    gate_override_reason="", check_gate=False)
