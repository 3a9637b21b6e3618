"""Loading stored model artifacts: sha256-verified, parsed once per process.

Scoring runs every night and after every import; parsing a LightGBM text model each time would
waste seconds, so loaded models stay in a small per-process cache keyed by (version id, sha256).
The key includes the hash, so a row whose artifact changed can never be served from the cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import ml

from .models import ModelVersion

CACHE_SIZE = 8

_cache: OrderedDict[tuple[int, str], object] = OrderedDict()
_lock = threading.Lock()


class ArtifactIntegrityError(RuntimeError):
    """The stored artifact's bytes do not hash to the sha256 recorded when it was trained."""


def artifact_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_model(version: ModelVersion):
    """The ``ml`` model of ``version``; reads and verifies the artifact only on a cache miss."""
    key = (version.pk, version.artifact_sha256)
    with _lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            return model
    data = bytes(
        ModelVersion.objects.for_institution(version.institution).filter(pk=version.pk)
        .values_list("artifact", flat=True).get()
    )
    if artifact_sha256(data) != version.artifact_sha256:
        raise ArtifactIntegrityError(
            f"model v{version.number}: the stored artifact does not match its sha256; refusing to load it"
        )
    model = ml.load_artifact(data)
    with _lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def remember_model(version: ModelVersion, model) -> None:
    """Put a model that was just trained into the cache, so the first scoring run skips parsing."""
    with _lock:
        _cache[(version.pk, version.artifact_sha256)] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def forget_models() -> None:
    """Empty this process's cache (the next load reads and verifies the stored artifact again)."""
    with _lock:
        _cache.clear()
