"""Scoring applicants: records that are no students of the institution, scored and not kept.

An admissions officer types one applicant's values into the page, uploads a file of them, or a
system sends them to the API; each record is checked against the institution's feature schema
the way an import checks a file (every value, all problems at once, nothing scored when one is
wrong), then explained by the live model exactly as a rescore explains a current student (the
same frame, the same ``explain``, the same number of factors, the same bands), so an applicant
with a student's values gets that student's risk and factors. Nothing about the records is
stored; the channel (page, file, API) writes one access-log entry with who, when, the model
version and how many records, never a value.

Protected attributes (gender, age, nationality...) are never inputs: a record that supplies one
is refused, as is a retired feature (no longer an input), a feature known only from a stage after
enrolment (an applicant has no such value yet: ``students.stages``) or a key the schema does not
know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from institutions.models import Institution
from students.feature_values import FeatureValueError, clean_feature_value
from students.models import FeatureDefinition, FeatureStage
from students.selectors import feature_definition_list
from students.stages import feature_keys_known_at, feature_stage_list, feature_stage_of

from .. import frames
from ..model_store import load_model
from ..models import ModelVersion, PredictionSettings
from ..selectors import model_version_live, prediction_settings_get
from .chunk_store import risk_band
from .scoring import TOP_FACTORS

# Records per API request, and rows per uploaded file (each within one request's time: scoring
# 5,000 rows takes about a second of CPU on the 300-tree models the platform trains).
MAX_RECORDS_PER_REQUEST = 1000
MAX_FILE_ROWS = 5000
MAX_FILE_BYTES = 2 * 1024 * 1024
REF_MAX_LENGTH = 100
# Rows explained at once while a file's answer streams out.
SCORING_CHUNK_ROWS = 500


class NoLiveModel(Exception):
    """The institution has no live model, so nothing can be scored."""

    def __init__(self) -> None:
        super().__init__(_("There is no live model yet, so applicants cannot be scored. An administrator trains "
                           "one and puts it live on the Risk model page."))


@dataclass(frozen=True)
class ApplicantRecordsInvalid(Exception):
    """``errors``: per record (its index), ``ref``/``record``/``features`` -> the reason; under
    ``features`` either one reason or, per feature key, its reason."""

    errors: dict[int, dict[str, object]]

    def __str__(self) -> str:
        return "; ".join(f"{index}: {fields}" for index, fields in self.errors.items())


@dataclass(frozen=True)
class ApplicantRecord:
    ref: str
    features: dict


@dataclass(frozen=True)
class ApplicantScore:
    ref: str
    risk: float
    band: str
    base_value: float
    base_risk: float | None
    factors: list[dict]


# The stage an applicant's values are known at: the latest of these the institution has (keys of
# students.stages' defaults), else its earliest stage.
APPLICANT_STAGE_KEYS = ("enrolment", "application")


@dataclass(frozen=True)
class ApplicantSchema:
    """What an applicant's record may give: every feature by key (so that a refused one is named),
    the stage an applicant is at, and the features known only later (key -> that stage's label)."""

    definitions: dict[str, FeatureDefinition]
    stage: FeatureStage
    later: dict[str, str]

    @property
    def offered(self) -> list[FeatureDefinition]:
        """The features the form asks for, in schema order: neither protected nor retired, and
        known by the applicant's stage (a missing value is allowed, as the model allows it)."""
        return [definition for definition in self.definitions.values()
                if not definition.protected and not definition.is_retired and definition.key not in self.later]


def applicant_schema(*, institution: Institution) -> ApplicantSchema:
    definitions = list(feature_definition_list(institution=institution))
    stages = feature_stage_list(institution=institution)
    stage = next((found for key in APPLICANT_STAGE_KEYS for found in stages if found.key == key), stages[0])
    known = set(feature_keys_known_at(stage=stage, stages=stages, definitions=definitions))
    return ApplicantSchema(
        definitions={definition.key: definition for definition in definitions}, stage=stage,
        later={definition.key: feature_stage_of(definition, stages).label
               for definition in definitions if definition.key not in known})


def applicant_values_clean(
    schema: ApplicantSchema, values: Mapping[str, object], *, decimal_comma: bool = False,
) -> tuple[dict, dict[str, str]]:
    """(cleaned values, reason per refused key) for one record."""
    cleaned: dict[str, float | str | bool | None] = {}
    errors: dict[str, str] = {}
    for key, raw in values.items():
        definition = schema.definitions.get(key)
        if definition is None:
            errors[key] = _("unknown feature: it is not in this institution's feature schema")
        elif definition.protected:
            errors[key] = _("a protected attribute: never an input for scoring applicants; leave it out")
        elif definition.is_retired:
            errors[key] = _("a retired feature: no longer a model input; leave it out")
        elif key in schema.later:
            errors[key] = _("known only from the stage %(stage)s, after %(applicant_stage)s: an applicant has no "
                            "such value yet; leave it out") % {"stage": schema.later[key],
                                                               "applicant_stage": schema.stage.label}
        elif isinstance(raw, list | dict):
            errors[key] = _("expected one value, not a list or an object")
        else:
            try:
                cleaned[key] = clean_feature_value(definition, raw, decimal_comma=decimal_comma)
            except FeatureValueError as exc:
                errors[key] = str(exc)
    return cleaned, errors


def applicant_records_clean(*, institution: Institution, records: Sequence[object]) -> list[ApplicantRecord]:
    """Check every record (``{"ref": "...", "features": {...}}``); raise
    :class:`ApplicantRecordsInvalid` with every problem of every record when any is wrong."""
    schema = applicant_schema(institution=institution)
    cleaned: list[ApplicantRecord] = []
    errors: dict[int, dict[str, object]] = {}
    seen: set[str] = set()
    for index, record in enumerate(records):
        problems: dict[str, object] = {}
        if not isinstance(record, Mapping):
            errors[index] = {"record": _('must be an object: {"ref": "...", "features": {...}}')}
            continue
        unknown = sorted(set(record) - {"ref", "features"})
        if unknown:
            problems["record"] = _("unknown fields: %(fields)s (a record has ref and features)") % {
                "fields": ", ".join(str(name) for name in unknown)}
        ref = ref_clean(record.get("ref"), problems)
        if ref is not None:
            if ref in seen:
                problems["ref"] = _("appears twice in these records")
            seen.add(ref)
        features = record.get("features", {})
        values: dict = {}
        if not isinstance(features, Mapping):
            problems["features"] = _("must be an object mapping feature keys to values")
        else:
            values, feature_errors = applicant_values_clean(schema, features)
            if feature_errors:
                problems["features"] = feature_errors
        if problems:
            errors[index] = problems
        elif ref is not None:
            cleaned.append(ApplicantRecord(ref=ref, features=values))
    if errors:
        raise ApplicantRecordsInvalid(errors)
    return cleaned


def ref_clean(raw: object, problems: dict[str, object]) -> str | None:
    """The record's reference (the caller's own name for the applicant), or None with the reason."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)  # a number read as its text, as the API reads every text field
    if not isinstance(raw, str) or not raw.strip():
        problems["ref"] = _("required: the applicant's reference (any text up to %(limit)d characters)") % {
            "limit": REF_MAX_LENGTH}
        return None
    ref = raw.strip()
    if len(ref) > REF_MAX_LENGTH or "\x00" in ref:
        problems["ref"] = _("at most %(limit)d characters, and no NUL character") % {"limit": REF_MAX_LENGTH}
        return None
    return ref


class ApplicantScorer:
    """The institution's live model, ready to score records as a rescore scores students."""

    def __init__(self, *, version: ModelVersion, settings: PredictionSettings) -> None:
        self.version = version
        self.settings = settings
        self.model = load_model(version)
        # The columns a rescore builds its frame with: the model's whole schema (absent: missing).
        self.keys = [spec.key for spec in self.model.schema]

    def score(self, records: Sequence[ApplicantRecord]) -> list[ApplicantScore]:
        if not records:
            return []
        explanations = self.model.explain(frames.features_frame([record.features for record in records], self.keys),
                                          top_k=TOP_FACTORS)
        return [
            ApplicantScore(ref=record.ref, risk=float(explanation["risk"]),
                           band=risk_band(float(explanation["risk"]), self.settings),
                           base_value=float(explanation["base_value"]), base_risk=explanation.get("base_risk"),
                           factors=explanation["factors"])
            for record, explanation in zip(records, explanations, strict=True)
        ]

    def score_in_chunks(self, records: Sequence[ApplicantRecord],
                        size: int = SCORING_CHUNK_ROWS) -> Iterable[ApplicantScore]:
        """The scores, ``size`` records explained at a time (a file's answer streams them)."""
        for start in range(0, len(records), size):
            yield from self.score(records[start:start + size])


def applicant_scorer(*, institution: Institution) -> ApplicantScorer:
    """The live model's scorer; :class:`NoLiveModel` when the institution has none."""
    version = model_version_live(institution=institution)
    if version is None:
        raise NoLiveModel()
    return ApplicantScorer(version=version, settings=prediction_settings_get(institution=institution))

