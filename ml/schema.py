"""The feature schema: what each column means, so that every later step can be generic.

An institution describes its own columns once (kind, range, labels, whether the feature is
protected or something an advisor can act on). Everything in ``ml`` — encoding, derived
features, explanations phrased for people, fairness groups, what-if validation — is driven by
this description rather than by knowledge of any one data set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ml.errors import SchemaError

FeatureKind = Literal["numeric", "categorical", "boolean"]
FEATURE_KINDS: tuple[str, ...] = ("numeric", "categorical", "boolean")


@dataclass
class FeatureSpec:
    """One input column of an institution's data.

    ``out_of`` is a generic hint that this numeric count is a part of another numeric count
    (units approved out of units enrolled, credits earned out of credits attempted). Training
    then derives the ratio as an extra model input and explanations read "2 of 6 <label>".
    """

    key: str
    label: str
    kind: FeatureKind
    min_value: float | None = None
    max_value: float | None = None
    categories: list[str] | None = None
    category_labels: dict[str, str] = field(default_factory=dict)
    unit: str = ""
    protected: bool = False
    actionable: bool = False
    description: str = ""
    out_of: str | None = None

    def __post_init__(self) -> None:
        if not self.key or not isinstance(self.key, str):
            raise SchemaError("every feature needs a non-empty string key")
        if self.kind not in FEATURE_KINDS:
            raise SchemaError(
                f"feature {self.key!r} has kind {self.kind!r}; expected one of {', '.join(FEATURE_KINDS)}"
            )
        if (
            self.min_value is not None
            and self.max_value is not None
            and float(self.min_value) > float(self.max_value)
        ):
            raise SchemaError(f"feature {self.key!r} has min_value above max_value")
        if self.categories is not None:
            self.categories = [str(c) for c in self.categories]
        self.category_labels = {str(k): str(v) for k, v in (self.category_labels or {}).items()}
        if self.out_of is not None and self.kind != "numeric":
            raise SchemaError(f"feature {self.key!r}: out_of only makes sense for numeric counts")
        if self.out_of == self.key:
            raise SchemaError(f"feature {self.key!r} cannot be out of itself")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(**data)

    def category_label(self, value: str) -> str:
        return self.category_labels.get(value, value)


def validate_schema(schema: Sequence[FeatureSpec]) -> list[FeatureSpec]:
    """Check keys are unique and ``out_of`` references point at numeric features."""
    specs = list(schema)
    if not specs:
        raise SchemaError("the feature schema is empty")
    by_key: dict[str, FeatureSpec] = {}
    for spec in specs:
        if not isinstance(spec, FeatureSpec):
            raise SchemaError(f"schema entries must be FeatureSpec, got {type(spec).__name__}")
        if spec.key in by_key:
            raise SchemaError(f"feature key {spec.key!r} appears twice in the schema")
        by_key[spec.key] = spec
    for spec in specs:
        if spec.out_of is not None:
            other = by_key.get(spec.out_of)
            if other is None or other.kind != "numeric":
                raise SchemaError(f"feature {spec.key!r} is out_of {spec.out_of!r}, which is not a numeric feature")
    return specs


def specs_by_key(schema: Iterable[FeatureSpec]) -> dict[str, FeatureSpec]:
    return {spec.key: spec for spec in schema}


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA/NaT, which all mean "not recorded"."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, tuple, dict)) else False
    except (TypeError, ValueError):
        return False


def category_string(value: Any) -> str | None:
    """Normalise a categorical value to the string form the schema uses.

    Institutions' exports often store category codes as numbers (``171`` or ``171.0``); both
    must match the schema category ``"171"``.
    """
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item") and not isinstance(value, str):
        return category_string(value.item())
    return str(value)
