"""The promotion gate, incremental rescoring, flag rules, the import reaction and a broker outage."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

import ml
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from institutions.tasks import dispatch_pending_jobs
from predictions.frames import feature_specs, training_data
from predictions.models import FlagRule, LatestPrediction, ModelStatus, ModelVersion, Prediction
from predictions.selectors import latest_predictions
from predictions.services.ranking import latest_predictions_rank
from predictions.services.training import model_gate_evaluate, model_version_train
from students.models import Outcome, Student
from students.selectors import current_students
from students.signals import import_committed

from .conftest import fast_settings, registry_row, rescore

pytestmark = pytest.mark.django_db


def _train(tenant):
    with institution_scope(tenant.institution):
        return model_version_train(institution=tenant.institution)


def test_database_allows_only_one_live_version_per_institution(tenants):
    a, b = tenants
    registry_row(a.institution, number=1, status=ModelStatus.LIVE)
    registry_row(b.institution, number=1, status=ModelStatus.LIVE)  # another institution: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        registry_row(a.institution, number=2, status=ModelStatus.LIVE)


def test_candidate_trained_on_too_few_students_waits_for_an_admin(trained_a):
    fast_settings(trained_a.institution, min_training_size=10_000)
    candidate = _train(trained_a)
    assert candidate.status == ModelStatus.CANDIDATE
    failed = [c["name"] for c in candidate.gate["checks"] if not c["passed"]]
    assert failed == ["training_size"]
    live = ModelVersion.objects.for_institution(trained_a.institution).get(status=ModelStatus.LIVE)
    assert live.pk == trained_a.version.pk


def test_candidate_worse_than_live_on_unseen_students_fails_the_auc_check(trained_a):
    institution = trained_a.institution
    settings = fast_settings(institution, max_auc_drop=0.05)
    with institution_scope(institution):
        specs = feature_specs(institution=institution)
        data = training_data(institution=institution, keys=[spec.key for spec in specs])
        # A candidate that learned from scrambled outcomes, judged on the real ones.
        scrambled = data.outcome.sample(frac=1.0, random_state=5).reset_index(drop=True)
        noise_model = ml.train_model(data.frame, scrambled, specs, ml.TrainingConfig(search_iterations=1))
        candidate = registry_row(institution, number=2)
        gate = model_gate_evaluate(institution=institution, candidate=candidate, model=noise_model, data=data,
                                   settings=settings)
    check = next(c for c in gate["checks"] if c["name"] == "auc_vs_live")
    comparison = gate["comparison"]
    assert comparison["live_version"] == trained_a.version.number
    assert comparison["rows"] == len(noise_model.holdout_index)
    assert comparison["live"]["roc_auc"] - comparison["candidate"]["roc_auc"] > 0.05
    assert comparison["intervals"]["difference"]["roc_auc"]["high"] < 0  # worse beyond the noise
    assert check["passed"] is False and gate["passed"] is False


def test_fairness_bound_holds_back_a_model_with_larger_gaps(trained_a):
    fast_settings(trained_a.institution, max_fairness_gap=0.0, max_auc_drop=1.0)
    candidate = _train(trained_a)
    fairness = next(c for c in candidate.gate["checks"] if c["name"] == "fairness")
    assert fairness["passed"] is False and "for Gender:" in fairness["detail"]  # the schema's label
    assert candidate.status == ModelStatus.CANDIDATE
    # The gap names both groups with the students it is measured on, and carries an interval.
    worst = fairness["gaps"][0]
    groups = candidate.fairness["cross_validated"]["attributes"][worst["attribute"]]["groups"]
    assert groups[worst["highest_group"]]["count"] >= 30 and groups[worst["lowest_group"]]["count"] >= 30
    assert worst["highest_size"] == groups[worst["highest_group"]][worst["measured_on"]]  # leavers or stayers
    low, high = worst["interval"]
    assert low <= worst["gap"] <= high
    assert f"{worst['highest_group']} ({worst['highest_size']} {worst['measured_on']})" in fairness["detail"]


def test_incremental_rescore_recomputes_only_changed_students_and_keeps_history(trained_a):
    _, first = rescore(trained_a)
    assert first.scored == first.current > 0
    _, unchanged = rescore(trained_a)
    assert (unchanged.scored, unchanged.unchanged) == (0, first.current)

    with institution_scope(trained_a.institution):
        student = current_students(institution=trained_a.institution).order_by("id").first()
        Student.objects.filter(pk=student.pk).update(features={**student.features, "units_approved": 0.0})
        # A protected attribute is not a model input: changing it is no reason to rescore.
        other = current_students(institution=trained_a.institution).order_by("-id").first()
        Student.objects.filter(pk=other.pk).update(features={**other.features, "gender": "m"})
    job, changed = rescore(trained_a)
    assert changed.scored == 1
    assert list(Prediction.objects.for_institution(trained_a.institution).filter(job=job)
                .values_list("student_id", flat=True)) == [student.pk]
    assert Prediction.objects.for_institution(trained_a.institution).filter(student=student).count() == 2
    latest = LatestPrediction.objects.for_institution(trained_a.institution).get(student=student)
    assert latest.prediction.job_id == job.pk

    _, forced = rescore(trained_a, full=True)
    assert forced.scored == forced.current


def test_students_who_leave_drop_out_of_the_ranking(trained_a):
    rescore(trained_a)
    with institution_scope(trained_a.institution):
        leaver = current_students(institution=trained_a.institution).first()
        Student.objects.filter(pk=leaver.pk).update(outcome=Outcome.GRADUATED)
    _, outcome = rescore(trained_a)
    latest = latest_predictions(institution=trained_a.institution)
    assert latest.count() == outcome.current
    assert not latest.filter(student=leaver).exists()
    assert Prediction.objects.for_institution(trained_a.institution).filter(student=leaver).exists()  # history


def test_flag_rule_threshold_or_capacity_and_band_cutoffs(trained_a):
    rescore(trained_a)
    institution = trained_a.institution
    settings = fast_settings(institution, flag_rule=FlagRule.CAPACITY, flag_capacity=5,
                             band_medium_from=0.2, band_high_from=0.5)
    with institution_scope(institution):
        assert latest_predictions_rank(institution=institution, settings=settings) == 5
        rows = list(latest_predictions(institution=institution).values_list("rank", "risk", "flagged", "band",
                                                                            "percentile"))
    assert [r[2] for r in rows] == [True] * 5 + [False] * (len(rows) - 5)
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert all(band == ("high" if risk >= 0.5 else "medium" if risk >= 0.2 else "low")
               for _, risk, _, band, _ in rows)
    # PERCENT_RANK: the share of the others with a lower risk (tied students share a percentile).
    risks = [r[1] for r in rows]
    assert [r[4] for r in rows] == pytest.approx(
        [100.0 * sum(other < risk for other in risks) / (len(risks) - 1) for risk in risks])
    assert rows[-1][4] == pytest.approx(0.0) and max(r[4] for r in rows) == rows[0][4] > 90

    settings = fast_settings(institution, flag_rule=FlagRule.THRESHOLD, flag_threshold=0.4)
    with institution_scope(institution):
        flagged = latest_predictions_rank(institution=institution, settings=settings)
    assert flagged == sum(1 for r in rows if r[1] >= 0.4)


def test_committed_import_queues_one_incremental_rescore(trained_a, tenant_b, django_capture_on_commit_callbacks):
    institution = trained_a.institution
    Job.objects.for_institution(institution).filter(kind=JobKind.RESCORE).update(status=JobStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        import_committed.send(sender=None, institution_id=institution.pk, job_id=1)
        import_committed.send(sender=None, institution_id=institution.pk, job_id=2)
    jobs = Job.objects.for_institution(institution).filter(kind=JobKind.RESCORE, triggered_by="import")
    assert jobs.count() == 1
    assert jobs.get().status == JobStatus.SUCCEEDED  # in-process (eager) run
    assert LatestPrediction.objects.for_institution(institution).count() == current_students(
        institution=institution).count()
    # No model in B: nothing is queued there.
    import_committed.send(sender=None, institution_id=tenant_b.institution.pk, job_id=3)
    assert not Job.objects.for_institution(tenant_b.institution).exists()


@pytest.mark.django_db(transaction=True)  # as in production: the request commits, then the job is sent
def test_with_the_broker_down_the_rescore_stays_queued_and_is_sent_when_it_is_back(client, trained_a):
    from dropout_platform.celery import app

    Job.objects.for_institution(trained_a.institution).filter(kind=JobKind.RESCORE).update(
        status=JobStatus.SUCCEEDED)
    saved = (app.conf.task_always_eager, app.conf.broker_url, app._pool)
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    app._pool = None
    app.amqp._producer_pool = None
    try:
        client.force_login(trained_a.admin)
        response = client.post(reverse("prediction-rescore", args=["alpha"]), {"full": "on"}, follow=True)
    finally:
        app.conf.task_always_eager, app.conf.broker_url, app._pool = saved
        app.amqp._producer_pool = None
    assert response.status_code == 200
    assert b"task queue is unreachable right now" in response.content
    job = Job.objects.for_institution(trained_a.institution).get(kind=JobKind.RESCORE, status=JobStatus.QUEUED)
    assert job.dispatched_at is None and "Could not reach the task queue" in job.dispatch_error
    page = client.get(reverse("prediction-job-list", args=["alpha"]))
    assert b"Could not reach the task queue" in page.content

    assert dispatch_pending_jobs() == 1  # broker back (in-process here): the job is sent and runs
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.counts["scored"] == job.counts["current"] > 0


def test_beat_entries_queue_a_scheduled_job_of_their_own_institution_only(tenants):
    from predictions.tasks import scheduled_rescore, scheduled_retrain

    a, b = tenants
    scheduled_rescore(institution_id=a.institution.pk)
    scheduled_retrain(institution_id=a.institution.pk)
    scheduled_rescore(institution_id=a.institution.pk)  # joins the one still queued
    jobs = Job.objects.for_institution(a.institution).filter(triggered_by="schedule")
    assert sorted(jobs.values_list("kind", flat=True)) == ["rescore", "retrain"]
    assert not Job.objects.for_institution(b.institution).exists()
