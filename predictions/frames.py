"""From the database to the frames ``ml`` reads: the schema, training rows and scoring rows.

The feature set is data (each institution's ``FeatureDefinition`` rows), so the frame's columns
are the institution's feature keys and ``ml`` receives a matching list of ``FeatureSpec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
from django.db.models import Func, JSONField, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import MD5, Cast

from institutions.models import Institution
from ml import FeatureSpec
from students.models import FeatureStage, Student
from students.selectors import current_students, feature_definition_list
from students.stages import feature_keys_known_at, feature_stage_list

from .outcome_mapping import OutcomeMapping, outcome_mapping_get


class NoFeatureSchema(ValueError):
    """The institution has not described any feature yet, so there is nothing to learn from."""


def feature_specs(*, institution: Institution, stage: FeatureStage | None = None) -> list[FeatureSpec]:
    """The model inputs' specs; for a ``stage``, only the features known at it or at an earlier one."""
    definitions = feature_definition_list(institution=institution).filter(retired_at__isnull=True)
    if stage is not None:
        known = set(feature_keys_known_at(stage=stage, stages=feature_stage_list(institution=institution),
                                          definitions=definitions))
        definitions = [definition for definition in definitions if definition.key in known]
    specs = [
        FeatureSpec(
            key=definition.key,
            label=definition.label,
            kind=definition.kind,
            min_value=definition.min_value,
            max_value=definition.max_value,
            categories=definition.category_values or None,
            category_labels=definition.category_labels,
            unit=definition.unit,
            protected=definition.protected,
            actionable=definition.actionable,
            description=definition.description,
        )
        # A retired feature is no model input from the next retrain on (its values stay stored).
        for definition in definitions
    ]
    if not specs:
        raise NoFeatureSchema("this institution has no features defined yet (or every one is retired); "
                              "add its data schema first")
    return specs


def features_frame(values: Sequence[dict], keys: Sequence[str]) -> pd.DataFrame:
    """One row per student, one column per feature key; absent values are missing (None/NaN)."""
    return pd.DataFrame.from_records(list(values), columns=list(keys))


@dataclass
class TrainingData:
    frame: pd.DataFrame
    outcome: pd.Series
    cohort: pd.Series | None
    student_ids: np.ndarray
    mapping: OutcomeMapping
    recorded_outcomes: list[str]  # each row's stored outcome value (failed, withdrawn...)

    @property
    def counts(self) -> dict:
        """Per class and per recorded outcome, with the mapping that made the classes."""
        return self.mapping.counts(self.recorded_outcomes)


def training_data(*, institution: Institution, keys: Sequence[str]) -> TrainingData:
    """Every student whose outcome the institution's mapping knows: did not complete (1) or completed (0)."""
    mapping = outcome_mapping_get(institution=institution)
    rows = list(
        Student.objects.for_institution(institution)
        .filter(mapping.known_filter())
        .order_by("id")
        .values_list("id", "outcome", "cohort", "features")
    )
    frame = features_frame([row[3] for row in rows], keys)
    outcome = pd.Series([mapping.label(row[1]) for row in rows], dtype=int)
    cohorts = [row[2] for row in rows]
    # Out-of-time evaluation only makes sense when several cohorts are recorded.
    cohort = pd.Series(cohorts, dtype=object) if len({c for c in cohorts if c}) > 1 else None
    return TrainingData(frame=frame, outcome=outcome, cohort=cohort,
                        student_ids=np.array([row[0] for row in rows], dtype=np.int64),
                        mapping=mapping, recorded_outcomes=[row[1] for row in rows])


def current_student_fingerprints(
    *, institution: Institution, keys: Sequence[str], id_range: tuple[int, int] | None = None,
) -> list[tuple[int, str]]:
    """``(student id, input fingerprint)`` of every current student (with ids in ``id_range``,
    both ends included, if given), ordered by id.

    The database computes the hash (md5 of the model's values as a JSON array, equal inputs
    giving equal fingerprints), so deciding who needs rescoring never ships 100,000 feature
    documents to Python.
    """
    values = Func(*(KeyTransform(key, "features") for key in keys), function="jsonb_build_array",
                  output_field=JSONField())
    students = current_students(institution=institution)
    if id_range is not None:
        students = students.filter(id__gte=id_range[0], id__lte=id_range[1])
    return list(students.order_by("id").annotate(
        fingerprint=MD5(Cast(values, TextField()))
    ).values_list("id", "fingerprint"))


def student_feature_values(*, institution: Institution, ids: Sequence[int]) -> dict[int, dict]:
    """Feature values of the given students (of this institution only), by id."""
    students = Student.objects.for_institution(institution).filter(id__in=list(ids))
    # orjson on the document's text is several times faster than Django's per-row json.loads.
    rows = students.annotate(raw=Cast("features", TextField())).values_list("id", "raw")
    return {student_id: orjson.loads(raw) if raw else {} for student_id, raw in rows}


def current_student_values(*, institution: Institution) -> tuple[np.ndarray, list[dict]]:
    """Ids and feature values of every student the model scores, ordered by id."""
    rows = list(current_students(institution=institution).order_by("id").values_list("id", "features"))
    return np.array([row[0] for row in rows], dtype=np.int64), [row[1] or {} for row in rows]
