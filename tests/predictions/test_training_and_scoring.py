"""Training stores a verified version; scoring stores one explained prediction per current student."""

from __future__ import annotations

import pytest

from institutions.scoping import institution_scope
from predictions.frames import features_frame
from predictions.model_store import ArtifactIntegrityError, forget_models, load_model
from predictions.models import LatestPrediction, ModelStatus, ModelVersion, Prediction
from students.models import Outcome, Student
from students.selectors import current_students

from .conftest import rescore

pytestmark = pytest.mark.django_db


def test_first_trained_model_passes_the_gate_and_goes_live(trained_a):
    version = ModelVersion.objects.for_institution(trained_a.institution).get(pk=trained_a.version.pk)
    assert version.status == ModelStatus.LIVE
    assert version.gate["passed"] is True
    known = Student.objects.for_institution(trained_a.institution).filter(
        outcome__in=[Outcome.DROPPED_OUT, Outcome.GRADUATED]).count()
    assert version.training_size == known >= 240
    assert 0.5 < version.metrics["roc_auc"] <= 1.0
    assert {row["model"] for row in version.baselines} >= {"lightgbm", "logistic_regression"}


def test_full_rescore_stores_one_explained_prediction_per_current_student(trained_a):
    job, outcome = rescore(trained_a, full=True)
    current = set(current_students(institution=trained_a.institution).values_list("id", flat=True))
    stored = Prediction.objects.for_institution(trained_a.institution).filter(job=job)
    assert set(stored.values_list("student_id", flat=True)) == current
    assert stored.count() == len(current) == outcome.scored
    one = stored.first()
    assert 0 < one.risk < 1 and one.factors and "text" in one.factors[0]
    latest = LatestPrediction.objects.for_institution(trained_a.institution)
    assert sorted(latest.values_list("rank", flat=True)) == list(range(1, len(current) + 1))


def test_tampered_artifact_is_refused_on_load(trained_a):
    versions = ModelVersion.objects.for_institution(trained_a.institution)
    version = versions.get(pk=trained_a.version.pk)
    tampered = bytes(version.artifact).replace(b'"threshold":', b'"threshold": ', 1)
    assert tampered != bytes(version.artifact)
    versions.filter(pk=version.pk).update(artifact=tampered)
    forget_models()
    with pytest.raises(ArtifactIntegrityError):
        load_model(version)


def test_stored_artifact_loads_to_identical_predictions(trained_a):
    version = ModelVersion.objects.for_institution(trained_a.institution).get(pk=trained_a.version.pk)
    trained = load_model(version)
    forget_models()
    reloaded = load_model(version)
    assert reloaded is not trained
    frame = features_frame([s.features for s in trained_a.students], [spec.key for spec in trained.schema])
    assert list(reloaded.predict_risk(frame)) == list(trained.predict_risk(frame))
    assert bytes(version.artifact).lstrip().startswith(b"{")  # JSON, never a pickle


def test_a_chunk_stored_twice_by_one_run_is_replaced_not_duplicated(trained_a):
    # A redelivered task may store a chunk the first delivery had stored: the run's rows for those
    # students are replaced (history and latest), never duplicated, and other runs' rows are kept.
    from institutions.jobs import job_create
    from institutions.models import JobKind
    from predictions.models import PredictionSettings
    from predictions.services.chunk_store import prediction_chunk_store

    institution = trained_a.institution
    first_job, _ = rescore(trained_a, full=True)
    version = ModelVersion.objects.for_institution(institution).get(status=ModelStatus.LIVE)
    settings = PredictionSettings.objects.for_institution(institution).get()
    students = list(current_students(institution=institution).values_list("id", flat=True)[:3])
    job, _ = job_create(institution=institution, kind=JobKind.RESCORE)
    chunk = [(student_id, f"fp{student_id}") for student_id in students]

    def explanations(risk):
        return [{"risk": risk, "base_value": -1.0, "factors": [{"key": "k", "text": f"risk {risk}"}]}
                for _ in students]

    with institution_scope(institution):
        prediction_chunk_store(institution=institution, job=job, version=version, settings=settings, chunk=chunk,
                               explanations=explanations(0.2), done_after=3)
        prediction_chunk_store(institution=institution, job=job, version=version, settings=settings, chunk=chunk,
                               explanations=explanations(0.9), done_after=3)

    again = Prediction.objects.for_institution(institution).filter(job=job)
    assert sorted(again.values_list("student_id", flat=True)) == sorted(students)
    assert set(again.values_list("risk", flat=True)) == {0.9}
    assert again.first().factors == [{"key": "k", "text": "risk 0.9"}]
    latest = LatestPrediction.objects.for_institution(institution).filter(student_id__in=students)
    assert {(row.prediction_id, row.risk) for row in latest} == {(p.pk, 0.9) for p in again}
    assert Prediction.objects.for_institution(institution).filter(job=first_job).count() == len(
        current_students(institution=institution))
