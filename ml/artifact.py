"""The model artifact format: one UTF-8 JSON document, no pickle.

Pickle would let a stored model execute code when loaded and ties artifacts to library
internals. Instead the LightGBM booster is stored as its own text format inside the JSON, next
to the encoder, calibrator and schema as plain data, so an artifact can be inspected, diffed and
loaded by any later version that knows the format number.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from ml.errors import ArtifactFormatError

ARTIFACT_FORMAT = "dropout_platform.ml.model"
ARTIFACT_VERSION = 1

_TRACKED_LIBRARIES = (
    "lightgbm",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "numba",
    "fairlearn",
)


def to_jsonable(value: Any) -> Any:
    """Recursively convert numpy/pandas scalars and containers to JSON types; NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or isinstance(value, (str, int)):
        return value
    if value is pd.NA:
        return None
    return str(value)


def library_versions() -> dict[str, str]:
    import platform

    versions = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_fingerprint(frame: pd.DataFrame, outcome: pd.Series, cohort: pd.Series | None = None) -> str:
    """sha256 over the training rows (columns in key order, index, outcome, cohort).

    Lets anyone check later that a model was trained on exactly a given extract.
    """
    digest = hashlib.sha256()
    for key in sorted(frame.columns, key=str):
        digest.update(str(key).encode("utf-8"))
        column = frame[key]
        if column.dtype == object:
            column = column.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
        digest.update(pd.util.hash_pandas_object(column, index=True).to_numpy().tobytes())
    digest.update(b"outcome")
    digest.update(pd.util.hash_pandas_object(outcome.astype(int), index=True).to_numpy().tobytes())
    if cohort is not None:
        digest.update(b"cohort")
        digest.update(pd.util.hash_pandas_object(cohort.astype(str), index=True).to_numpy().tobytes())
    return digest.hexdigest()


def encode_document(document: dict[str, Any]) -> bytes:
    """Deterministic bytes (sorted keys, no NaN) so equal models have equal sha256."""
    body = {"format": ARTIFACT_FORMAT, "format_version": ARTIFACT_VERSION, **document}
    return json.dumps(to_jsonable(body), sort_keys=True, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def decode_document(data: bytes) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ArtifactFormatError("a model artifact must be bytes")
    try:
        document = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactFormatError(f"not a model artifact: {error}") from error
    if not isinstance(document, dict) or document.get("format") != ARTIFACT_FORMAT:
        raise ArtifactFormatError("not a dropout_platform model artifact (format field missing or different)")
    version = document.get("format_version")
    if version != ARTIFACT_VERSION:
        raise ArtifactFormatError(
            f"model artifact format version {version!r} cannot be read by this version (reads {ARTIFACT_VERSION})"
        )
    for key in ("booster", "encoder", "calibrator", "schema"):
        if key not in document:
            raise ArtifactFormatError(f"model artifact is incomplete: {key!r} is missing")
    return document


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
