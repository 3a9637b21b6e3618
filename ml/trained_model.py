"""The trained model the platform stores, scores with, explains and audits.

Everything the web app needs at scoring time lives here and in the artifact it serialises to;
training-only machinery (search, baselines, nested CV) stays in ``ml.training``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.artifact import decode_document, encode_document, sha256_hex
from ml.boosting import prediction_threads
from ml.calibration import Calibrator
from ml.config import TrainingConfig
from ml.encoding import FeatureEncoder
from ml.errors import ArtifactFormatError, InvalidChangeError
from ml.explanation import TreeShapComputer, build_explanations, observed_rates
from ml.metrics import classification_metrics
from ml.schema import FeatureSpec, category_string, is_missing, specs_by_key


class TrainedModel:
    """A calibrated LightGBM dropout model with its schema, explanations and model card."""

    def __init__(
        self,
        *,
        schema: Sequence[FeatureSpec],
        encoder: FeatureEncoder,
        model_text: str,
        calibrator: Calibrator,
        threshold: float,
        config: TrainingConfig,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.schema = list(schema)
        self.encoder = encoder
        self.model_text = model_text
        self.calibrator = calibrator
        self.threshold = float(threshold)
        self.config = config
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._specs = specs_by_key(self.schema)
        self._shap: TreeShapComputer | None = None

    # -- identity -----------------------------------------------------------------------------
    @cached_property
    def booster(self) -> lgb.Booster:
        return lgb.Booster(model_str=self.model_text)

    @property
    def feature_keys(self) -> list[str]:
        """Features the model reads, in the order of ``explain_arrays`` columns."""
        return list(self.encoder.feature_keys)

    @property
    def model_card(self) -> dict[str, Any]:
        return self.metadata.get("model_card", {})

    @property
    def global_importance(self) -> list[dict[str, Any]]:
        return list(self.metadata.get("global_importance", []))

    @property
    def holdout_index(self) -> list[Any]:
        return list(self.metadata.get("holdout_index", []))

    @property
    def holdout_metrics(self) -> dict[str, Any]:
        return self.metadata.get("holdout_metrics", {})

    @property
    def training_fingerprint(self) -> str | None:
        return self.metadata.get("training_fingerprint")

    # -- scoring ------------------------------------------------------------------------------
    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Booster log-odds before calibration (what SHAP values add up to)."""
        matrix = self.encoder.transform(frame)
        if len(matrix) == 0:  # a rescore batch can be empty; LightGBM cannot predict zero rows
            return np.zeros(0)
        threads = prediction_threads(len(matrix), self.config.n_jobs)
        return np.asarray(self.booster.predict(matrix, raw_score=True, num_threads=threads), dtype=float)

    def predict_risk(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(dropout) per row."""
        return self.calibrator.apply(self.raw_score(frame))

    def flag(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_risk(frame) >= self.threshold

    # -- explanations -------------------------------------------------------------------------
    def _shap_computer(self) -> TreeShapComputer:
        if self._shap is None:
            self._shap = TreeShapComputer(self.booster, n_jobs=self.config.n_jobs)
        return self._shap

    def explain_columns(self, frame: pd.DataFrame) -> tuple[np.ndarray, float, np.ndarray]:
        """Unfolded SHAP values per model column, the base value and the model matrix."""
        matrix = self.encoder.transform(frame)
        values, base = self._shap_computer().shap_values(matrix)
        return values, base, matrix

    def explain_arrays(self, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Fast path: ([n, len(feature_keys)] log-odds contributions folded to features, base value)."""
        values, base, _ = self.explain_columns(frame)
        return values @ self.encoder.fold_matrix(), base

    @cached_property
    def base_risk(self) -> float:
        """The calibrated risk at the SHAP base value: where every explanation's points start."""
        return float(self.calibrator.apply(np.array([self._shap_computer().expected_value()]))[0])

    def explain(self, frame: pd.DataFrame, top_k: int = 5) -> list[dict[str, Any]]:
        """Per row: risk, base value and risk, raw score, folded contributions in log-odds and in
        points of the shown risk, and the top-k factors in words."""
        values, base, _ = self.explain_columns(frame)
        folded = values @ self.encoder.fold_matrix()
        raw = folded.sum(axis=1) + base
        risk = self.calibrator.apply(raw)
        base_risk = float(self.calibrator.apply(np.array([base]))[0])
        return build_explanations(frame, self.encoder.specs, folded, base, risk, top_k, base_risk=base_risk,
                                  calibrate=self.calibrator.apply, rates=self.metadata.get("observed_rates"))

    def record_observed_rates(self, frame: pd.DataFrame, outcome: pd.Series | Sequence[int]) -> None:
        """Keep, in the artifact, the training students' dropout rate per value group of each
        feature, so no factor sentence contradicts what was observed (``ml.explanation``)."""
        rates = observed_rates(frame, np.asarray(outcome, dtype=int), self.encoder.specs)
        self.metadata["observed_rates"] = rates
        self.metadata.setdefault("model_card", {})["explanations"] = {
            "base_value": self._shap_computer().expected_value(),
            "base_risk": self.base_risk,
            "observed_rate_students": rates["overall"][0],
            "observed_rate": rates["overall"][1] / rates["overall"][0] if rates["overall"][0] else None,
        }
        self.__dict__.pop("sha256", None)

    # -- what-if ------------------------------------------------------------------------------
    def validate_change(self, key: str, value: Any) -> None:
        """Raise InvalidChangeError unless ``value`` is a possible value of an actionable feature."""
        spec = self._specs.get(key)
        if spec is None:
            raise InvalidChangeError(f"unknown feature {key!r}: it is not in this model's schema")
        if not spec.actionable:
            raise InvalidChangeError(
                f"{spec.label!r} ({key}) is not marked actionable, so it cannot be changed in a what-if"
            )
        if is_missing(value):
            raise InvalidChangeError(f"a what-if change to {spec.label!r} must give a value")
        if spec.kind == "numeric":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidChangeError(f"{spec.label!r} needs a number; got {value!r}")
            number = float(value)
            if not math.isfinite(number):
                raise InvalidChangeError(f"{spec.label!r} needs a finite number; got {value!r}")
            if spec.min_value is not None and number < float(spec.min_value):
                raise InvalidChangeError(
                    f"{spec.label!r} cannot be below {spec.min_value:g}; got {number:g}"
                )
            if spec.max_value is not None and number > float(spec.max_value):
                raise InvalidChangeError(
                    f"{spec.label!r} cannot be above {spec.max_value:g}; got {number:g}"
                )
        elif spec.kind == "boolean":
            if not (isinstance(value, (bool, np.bool_)) or value in (0, 1)):
                raise InvalidChangeError(f"{spec.label!r} is yes/no; got {value!r}")
        else:
            code = category_string(value)
            if spec.categories is not None and code not in spec.categories:
                raise InvalidChangeError(
                    f"{code!r} is not a category of {spec.label!r}; expected one of {', '.join(spec.categories)}"
                )

    def what_if(self, row: Mapping[str, Any], changes: Mapping[str, Any], top_k: int = 5) -> dict[str, Any]:
        """Risk and top factors before and after changing actionable features of one student."""
        if not changes:
            raise InvalidChangeError("a what-if needs at least one change")
        for key, value in changes.items():
            self.validate_change(key, value)
        keys = [spec.key for spec in self.schema]
        before = {key: row.get(key) for key in keys}
        after = {**before, **changes}
        frame = pd.DataFrame([before, after], columns=keys)
        first, second = self.explain(frame, top_k=top_k)
        return {
            "risk_before": first["risk"],
            "risk_after": second["risk"],
            "factors_before": first["factors"],
            "factors_after": second["factors"],
            "changes": dict(changes),
        }

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, frame: pd.DataFrame, outcome: pd.Series | Sequence[int]) -> dict[str, Any]:
        """Metrics of this model on given rows (the promotion gate compares models on one holdout)."""
        y = np.asarray(outcome, dtype=int)
        return classification_metrics(
            y,
            self.predict_risk(frame),
            top_k_fractions=self.config.top_k_fractions,
            capacity=self.config.capacity,
        )

    # -- artifact -----------------------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        return {
            "schema": [spec.to_dict() for spec in self.schema],
            "encoder": self.encoder.to_dict(),
            "booster": self.model_text,
            "calibrator": self.calibrator.to_dict(),
            "threshold": self.threshold,
            "config": self.config.to_dict(),
            "metadata": self.metadata,
        }

    def to_artifact(self) -> bytes:
        """One UTF-8 JSON document; no pickle. Byte-identical for an identical model."""
        return encode_document(self.to_document())

    @cached_property
    def sha256(self) -> str:
        return sha256_hex(self.to_artifact())

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> TrainedModel:
        try:
            schema = [FeatureSpec.from_dict(spec) for spec in document["schema"]]
            encoder = FeatureEncoder.from_dict(document["encoder"], specs_by_key(schema))
            return cls(
                schema=schema,
                encoder=encoder,
                model_text=document["booster"],
                calibrator=Calibrator.from_dict(document["calibrator"]),
                threshold=document["threshold"],
                config=TrainingConfig.from_dict(document["config"]),
                metadata=document.get("metadata") or {},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactFormatError(f"model artifact is malformed: {error}") from error


def load_artifact(data: bytes) -> TrainedModel:
    """Rebuild a model from ``to_artifact()`` bytes; predictions are identical to the original."""
    model = TrainedModel.from_document(decode_document(data))
    try:
        model.booster  # noqa: B018 - parse now so a corrupt model fails at load, not at scoring
    except lgb.basic.LightGBMError as error:
        raise ArtifactFormatError(f"model artifact holds an unreadable LightGBM model: {error}") from error
    return model
