"""The stages of a student's path at which their data becomes known, and which feature is known when.

An institution has an ordered list of stages (by default application, enrolment, end of term 1,
end of term 2; its administrators add, rename, move and remove their own on the schema pages).
Each feature says from which stage it is known (``FeatureDefinition.known_from``; empty means the
earliest stage), so a model of a stage can learn from what is known at that moment only.

The default stages are created with the institution (a ``post_save`` receiver, so every path that
creates one: the service, the staff admin, a shell or a test factory), and migration 0014 gave them
to the institutions that existed before; a page or API read never writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils.translation import gettext as _

from institutions.models import Institution

from .models import ChangeSource, FeatureDefinition, FeatureStage, FeatureStageChange

# (key, label): the moments most institutions know their students' data at.
DEFAULT_STAGES = (
    ("application", "Application"),
    ("enrolment", "Enrolment"),
    ("end_of_term_1", "End of term 1"),
    ("end_of_term_2", "End of term 2"),
)
MAX_STAGES = 12
_KEY = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def feature_stages_ensure(*, institution: Institution) -> None:
    """Give an institution without stages the default ones (a no-op once it has any)."""
    if FeatureStage.objects.for_institution(institution).exists():
        return
    FeatureStage.objects.for_institution(institution).bulk_create(
        [FeatureStage(institution=institution, key=key, label=label, position=position)
         for position, (key, label) in enumerate(DEFAULT_STAGES)],
        ignore_conflicts=True,  # two first reads at once: the second adds nothing
    )


def feature_stage_list(*, institution: Institution) -> list[FeatureStage]:
    """The institution's stages, earliest first (a read: it never writes; the rows exist from the
    institution's creation, see :func:`give_new_institution_default_stages`)."""
    stages = list(FeatureStage.objects.for_institution(institution).order_by("position", "id"))
    if not stages:  # only a row deleted by hand gets here: make them rather than fail the page
        feature_stages_ensure(institution=institution)
        stages = list(FeatureStage.objects.for_institution(institution).order_by("position", "id"))
    return stages


def give_new_institution_default_stages(sender, instance: Institution, created: bool, raw: bool = False,
                                        **kwargs) -> None:
    """``post_save`` of Institution: a new institution starts with the default stages."""
    if created and not raw:
        feature_stages_ensure(institution=instance)


def feature_stage_of(definition: FeatureDefinition, stages: list[FeatureStage]) -> FeatureStage:
    """The stage ``definition`` is known from: its own, or the earliest when it names none."""
    by_id = {stage.pk: stage for stage in stages}
    return by_id.get(definition.known_from_id) or stages[0]


def feature_keys_known_at(
    *, stage: FeatureStage, stages: list[FeatureStage], definitions: Iterable[FeatureDefinition]
) -> list[str]:
    """Keys of the features known at ``stage`` or at an earlier one, in the definitions' order."""
    order = {item.pk: index for index, item in enumerate(stages)}
    reached = order[stage.pk]
    return [definition.key for definition in definitions
            if order[feature_stage_of(definition, stages).pk] <= reached]


def feature_stage_usage(*, institution: Institution, stages: list[FeatureStage]) -> dict[int, int]:
    """How many features (retired ones included) are known from each stage, by stage id."""
    usage = {stage.pk: 0 for stage in stages}
    for definition in FeatureDefinition.objects.for_institution(institution).only("known_from"):
        usage[feature_stage_of(definition, stages).pk] += 1
    return usage


def feature_stage_for_input(*, institution: Institution, key: str) -> FeatureStage | None:
    """The institution's stage named ``key`` (from input); None when it has no such stage."""
    feature_stages_ensure(institution=institution)
    return FeatureStage.objects.for_institution(institution).filter(key=str(key or "").strip()).first()


class FeatureStageInvalid(ValueError):
    """A stage edit that cannot be made; ``errors`` maps field -> reasons (shown to the person)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{key}: {' '.join(reasons)}" for key, reasons in errors.items()))
        self.errors = errors


STAGE_ACTIONS = ("add", "rename", "move_earlier", "move_later", "remove")


@dataclass(frozen=True)
class FeatureStageEditPreview:
    """What a stage edit would do, shown before it is saved."""

    action: str
    stage_key: str
    changes: dict[str, list]  # field -> [old, new]; "order" -> [old keys, new keys]
    features_affected: int  # features known from the stage (their models change at the next retrain)


def _new_order(stages: list[FeatureStage], stage: FeatureStage, action: str) -> list[FeatureStage]:
    order = list(stages)
    index = order.index(stage)
    target = index - 1 if action == "move_earlier" else index + 1
    if not 0 <= target < len(order):
        raise FeatureStageInvalid({"stage": [_("this stage is already the earliest") if action == "move_earlier"
                                             else _("this stage is already the latest")]})
    order[index], order[target] = order[target], order[index]
    return order


def feature_stage_edit_preview(
    *, institution: Institution, action: str, stage_key: str = "", key: str = "", label: str = ""
) -> FeatureStageEditPreview:
    """Validate a stage edit and say what it would change, without saving anything.

    ``add`` takes ``key`` and ``label`` (the new stage goes last); ``rename`` takes ``stage_key``
    and ``label``; ``move_earlier``/``move_later``/``remove`` take ``stage_key``. Raises
    :class:`FeatureStageInvalid` with a reason a person can act on.
    """
    if action not in STAGE_ACTIONS:
        raise FeatureStageInvalid({"action": [_("unknown action")]})
    stages = feature_stage_list(institution=institution)
    label = str(label or "").strip()
    max_label = FeatureStage._meta.get_field("label").max_length
    if action in ("add", "rename"):
        if not label:
            raise FeatureStageInvalid({"label": [_("must not be blank")]})
        if len(label) > max_label:
            raise FeatureStageInvalid({"label": [_("at most %(n)s characters") % {"n": max_label}]})
        if any(stage.label.casefold() == label.casefold() and stage.key != stage_key for stage in stages):
            raise FeatureStageInvalid({"label": [_("another stage already has this name")]})
    if action == "add":
        key = str(key or "").strip()
        if not _KEY.match(key) or len(key) > FeatureStage._meta.get_field("key").max_length:
            raise FeatureStageInvalid({"key": [_("use lower-case letters, digits and underscores (at most 40)")]})
        if any(stage.key == key for stage in stages):
            raise FeatureStageInvalid({"key": [_("a stage with this key already exists")]})
        if len(stages) >= MAX_STAGES:
            raise FeatureStageInvalid({"key": [_("an institution has at most %(n)s stages") % {"n": MAX_STAGES}]})
        return FeatureStageEditPreview(action, key, {"created": [None, label],
                                                     "order": [[s.key for s in stages], [*(s.key for s in stages),
                                                                                         key]]}, 0)
    stage = next((item for item in stages if item.key == stage_key), None)
    if stage is None:
        raise FeatureStageInvalid({"stage": [_("this institution has no such stage")]})
    used = feature_stage_usage(institution=institution, stages=stages)[stage.pk]
    if action == "rename":
        changes = {"label": [stage.label, label]} if label != stage.label else {}
        return FeatureStageEditPreview(action, stage.key, changes, used)
    if action == "remove":
        if len(stages) == 1:
            raise FeatureStageInvalid({"stage": [_("an institution keeps at least one stage")]})
        if used:
            raise FeatureStageInvalid({"stage": [
                _("%(n)s features are known from this stage: give them another stage first") % {"n": used}]})
        return FeatureStageEditPreview(action, stage.key, {"removed": [stage.label, None],
                                                           "order": [[s.key for s in stages],
                                                                     [s.key for s in stages if s != stage]]}, 0)
    order = _new_order(stages, stage, action)
    return FeatureStageEditPreview(action, stage.key, {"order": [[s.key for s in stages], [s.key for s in order]]},
                                   used)


@transaction.atomic
def feature_stage_edit(
    *, institution: Institution, action: str, stage_key: str = "", key: str = "", label: str = "",
    actor: AbstractBaseUser | None = None, source: str = ChangeSource.WEB,
) -> FeatureStageEditPreview:
    """Apply a stage edit (see :func:`feature_stage_edit_preview`) and record who made it, when."""
    # One edit at a time per institution: two reorders at once cannot interleave their positions.
    list(FeatureStage.objects.for_institution(institution).select_for_update().values_list("pk", flat=True))
    preview = feature_stage_edit_preview(institution=institution, action=action, stage_key=stage_key, key=key,
                                         label=label)
    if not preview.changes:
        return preview
    stages = FeatureStage.objects.for_institution(institution)
    if action == "add":
        stages.create(key=preview.stage_key, label=preview.changes["created"][1],
                      position=len(preview.changes["order"][0]))
    elif action == "rename":
        stage = stages.get(key=preview.stage_key)
        stage.label = preview.changes["label"][1]
        stage.save(update_fields=["label", "updated_at"])
    elif action == "remove":
        try:
            with transaction.atomic():
                stages.filter(key=preview.stage_key).delete()
        except (RestrictedError, ProtectedError):
            # Trained models name the stage (the app above keeps them); they stay traceable to it.
            raise FeatureStageInvalid({"stage": [_("models were trained for this stage: it is kept")]}) from None
    if "order" in preview.changes:
        by_key = {stage.key: stage for stage in stages}
        for position, stage_key_in_order in enumerate(preview.changes["order"][1]):
            stage = by_key[stage_key_in_order]
            if stage.position != position:
                stage.position = position
                stage.save(update_fields=["position", "updated_at"])
    FeatureStageChange.objects.for_institution(institution).create(
        stage_key=preview.stage_key, actor=actor, source=source, changes=preview.changes)
    return preview


def feature_stage_changes(*, institution: Institution, limit: int = 20) -> list[FeatureStageChange]:
    """The latest edits of the institution's stages, newest first."""
    return list(FeatureStageChange.objects.for_institution(institution).select_related("actor")
                .order_by("-changed_at", "-id")[:limit])


def feature_definitions_with_stage(*, institution: Institution) -> list[FeatureDefinition]:
    """The schema's features in order, each with ``stage``: the stage it is known from."""
    stages = feature_stage_list(institution=institution)
    definitions = list(FeatureDefinition.objects.for_institution(institution).order_by("position", "key"))
    for definition in definitions:
        definition.stage = feature_stage_of(definition, stages)
    return definitions


def feature_stages_in_use(*, institution: Institution) -> list[FeatureStage]:
    """The stages a model is trained for, earliest first: each one from which at least one model
    input (a feature neither retired nor protected) becomes known. An institution that never set
    stages has one: the earliest, whose model reads every feature."""
    stages = feature_stage_list(institution=institution)
    inputs = FeatureDefinition.objects.for_institution(institution).filter(retired_at__isnull=True, protected=False)
    used = {feature_stage_of(definition, stages).pk for definition in inputs.only("known_from")}
    return [stage for stage in stages if stage.pk in used]
