"""A population a model can learn from, added to the shared tenants.

Dropout really depends on the features here (few approved units and unpaid tuition raise it),
so a trained model has something true to find, and the numbers tests check come from ml.
"""

from __future__ import annotations

import numpy as np
import pytest

from institutions.scoping import institution_scope
from predictions.models import PredictionSettings
from students.models import Outcome, Student

TRAINING_SEARCH_ITERATIONS = 1


def add_population(institution, *, known: int = 240, current: int = 60, seed: int = 7, prefix: str = "P"):
    """``known`` students with an outcome (dropped out / graduated) and ``current`` still enrolled."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(known + current):
        units = float(rng.integers(0, 31))
        tuition = bool(rng.random() < 0.75)
        gender = "f" if rng.random() < 0.5 else "m"
        logit = 1.5 - 0.18 * units + (0.0 if tuition else 1.8)
        dropped = rng.random() < 1 / (1 + np.exp(-logit))
        outcome = Outcome.ENROLLED if i >= known else (Outcome.DROPPED_OUT if dropped else Outcome.GRADUATED)
        rows.append(Student(
            institution=institution, external_id=f"{prefix}{i:05d}", outcome=outcome,
            cohort=str(2019 + i % 4),
            features={"units_approved": units, "tuition_up_to_date": tuition, "gender": gender},
        ))
    Student.objects.for_institution(institution).bulk_create(rows)
    return rows


def fast_settings(institution, **overrides) -> PredictionSettings:
    values = {"search_iterations": TRAINING_SEARCH_ITERATIONS, "min_training_size": 100, **overrides}
    settings, _ = PredictionSettings.objects.for_institution(institution).update_or_create(
        institution=institution, defaults=values
    )
    return settings


@pytest.fixture
def trained_a(tenant_a):
    """Tenant A with a learnable population, fast training settings and a live model (v1)."""
    from predictions.services.training import model_version_train

    add_population(tenant_a.institution)
    fast_settings(tenant_a.institution)
    with institution_scope(tenant_a.institution):
        version = model_version_train(institution=tenant_a.institution)
    tenant_a.version = version
    return tenant_a


PASSED_GATE = {"passed": True, "checks": [{"name": "training_size", "label": "Enough students with a known outcome",
                                            "passed": True, "detail": "300 students (minimum 100)"}]}
FAILED_GATE = {"passed": False, "checks": [{"name": "training_size", "label": "Enough students with a known outcome",
                                            "passed": False, "detail": "300 students (minimum 10000)"}]}


def registry_row(institution, *, number: int, status: str = "candidate", artifact: bytes = b"{}", **fields):
    """A registry row without training (for pages and decisions that never load the model).

    Its gate passed unless ``gate`` says otherwise (``FAILED_GATE``, or ``{}`` for no verdict).
    """
    from predictions.model_store import artifact_sha256
    from predictions.models import ModelVersion

    fields.setdefault("gate", PASSED_GATE)
    return ModelVersion.objects.for_institution(institution).create(
        number=number, status=status, artifact=artifact, artifact_sha256=artifact_sha256(artifact),
        artifact_bytes=len(artifact), training_size=300, **fields,
    )


def rescore(tenant, **kwargs):
    """Run a rescore job for the tenant in-process, as a worker would: returns (job, outcome)."""
    from institutions.jobs import job_create
    from institutions.models import JobKind
    from predictions.services.scoring import predictions_rescore

    job, _ = job_create(institution=tenant.institution, kind=JobKind.RESCORE)
    with institution_scope(tenant.institution):
        return job, predictions_rescore(institution=tenant.institution, job=job, **kwargs)
