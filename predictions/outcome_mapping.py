"""What each recorded outcome means for training, as the institution decided it.

The model learns P(did not complete). Which outcomes count as not completing (label 1), as
completing (label 0) or as not known yet (left out of training) is the institution's choice,
stored per ``students.Outcome`` value on its ``PredictionSettings``: a failed course, a transfer or
a withdrawal mean different things in different places. Training, the promotion gate, the
fairness audit and the realised-performance check all read the students through this one mapping,
so they judge the model on the same population it learned from. ``enrolled`` is never known: it
is the outcome of the students the model scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext as _

from institutions.models import Institution
from students.models import Outcome

from .models import OutcomeClass, PredictionSettings, default_outcome_classes

# Every outcome a student can finish with, in the order the settings page lists them.
MAPPABLE_OUTCOMES: tuple[str, ...] = tuple(value for value in Outcome.values if value != Outcome.ENROLLED)
# The recorded outcomes as the settings and model pages name them (translated labels).
OUTCOME_NAMES = dict(Outcome.choices)
# The label the model is trained on, per class (None: not trained on).
CLASS_LABELS = {OutcomeClass.DID_NOT_COMPLETE: 1, OutcomeClass.COMPLETED: 0, OutcomeClass.NOT_KNOWN: None}


class OutcomeMappingInvalid(ValueError):
    """A mapping that cannot be saved; the message says what to change (nothing was saved)."""


@dataclass(frozen=True)
class OutcomeMapping:
    """The class of every mappable outcome value."""

    classes: Mapping[str, str]

    @classmethod
    def of(cls, settings: PredictionSettings) -> OutcomeMapping:
        # An unsaved settings row (an institution that never saved any) has the default in its field.
        stored = settings.outcome_classes if isinstance(settings.outcome_classes, dict) else {}
        return cls.from_dict(stored)

    @classmethod
    def from_dict(cls, stored: Mapping[str, str]) -> OutcomeMapping:
        return cls({value: stored.get(value, OutcomeClass.NOT_KNOWN.value) for value in MAPPABLE_OUTCOMES})

    @classmethod
    def default(cls) -> OutcomeMapping:
        return cls.from_dict(default_outcome_classes())

    @classmethod
    def validated(cls, proposed: Mapping[str, object]) -> OutcomeMapping:
        """A complete mapping from user input, or OutcomeMappingInvalid saying what is wrong."""
        unknown = sorted(str(key) for key in proposed if key not in MAPPABLE_OUTCOMES)
        if unknown:
            raise OutcomeMappingInvalid(_(
                "%(unknown)s is not an outcome that can be mapped; the outcomes are %(outcomes)s (a student still "
                "enrolled is never trained on). Nothing was saved.") % {
                    "unknown": ", ".join(unknown), "outcomes": ", ".join(MAPPABLE_OUTCOMES)})
        bad = sorted(str(key) for key, value in proposed.items() if value not in OutcomeClass.values)
        if bad:
            raise OutcomeMappingInvalid(_(
                "Choose did_not_complete, completed or not_known for %(outcomes)s. Nothing was saved.") % {
                    "outcomes": ", ".join(bad)})
        mapping = cls.from_dict({key: str(value) for key, value in proposed.items()})
        for needed in (OutcomeClass.DID_NOT_COMPLETE, OutcomeClass.COMPLETED):
            if not mapping.values_of(needed):
                raise OutcomeMappingInvalid(_(
                    "Map at least one outcome to “%(class)s”: a model learns from students of both kinds. "
                    "Nothing was saved.") % {"class": needed.label})
        return mapping

    def values_of(self, outcome_class: str) -> list[str]:
        return [value for value in MAPPABLE_OUTCOMES if self.classes[value] == outcome_class]

    @property
    def known_values(self) -> list[str]:
        return [value for value in MAPPABLE_OUTCOMES if self.classes[value] != OutcomeClass.NOT_KNOWN]

    def label(self, outcome: str) -> int | None:
        """1 (did not complete), 0 (completed) or None (not trained on) for a student's outcome."""
        return CLASS_LABELS[OutcomeClass(self.classes.get(outcome, OutcomeClass.NOT_KNOWN))]

    def known_filter(self, prefix: str = "") -> Q:
        """Students whose outcome this mapping trains on (``prefix``: the path to the student)."""
        return Q(**{f"{prefix}outcome__in": self.known_values})

    def as_dict(self) -> dict[str, str]:
        return dict(self.classes)

    def counts(self, outcomes: Iterable[str]) -> dict:
        """Training counts of these outcomes: per class and per outcome value (the model card's)."""
        by_outcome: dict[str, int] = {}
        for outcome in outcomes:
            by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        did_not = sum(n for value, n in by_outcome.items() if self.label(value) == 1)
        completed = sum(n for value, n in by_outcome.items() if self.label(value) == 0)
        # "dropped_out"/"graduated" are the classes under their historical names (API and old versions).
        return {"dropped_out": did_not, "graduated": completed, "did_not_complete": did_not, "completed": completed,
                "by_outcome": dict(sorted(by_outcome.items())), "mapping": self.as_dict()}


def outcome_mapping_get(*, institution: Institution) -> OutcomeMapping:
    """The institution's mapping (the default while it never saved its prediction settings)."""
    stored = PredictionSettings.objects.for_institution(institution).values_list("outcome_classes", flat=True).first()
    return OutcomeMapping.default() if stored is None else OutcomeMapping.from_dict(stored or {})


def training_population_rows(training_counts: Mapping) -> list[dict]:
    """A version's training students per recorded outcome, with the class each was trained as
    (the mapping stored with its counts; none for versions trained before the mapping existed)."""
    by_outcome = training_counts.get("by_outcome") or {}
    mapping = OutcomeMapping.from_dict(training_counts.get("mapping") or default_outcome_classes())
    names = dict(OutcomeClass.choices)
    return [{"outcome": OUTCOME_NAMES.get(value, value), "students": count,
             "class": names[mapping.classes.get(value, OutcomeClass.NOT_KNOWN)]}
            for value, count in by_outcome.items()]
