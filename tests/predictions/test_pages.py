"""Model registry and job pages: who may see and do what, and institutions never mix."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from institutions.jobs import job_create
from institutions.models import Job, JobKind
from institutions.scoping import institution_scope
from predictions.models import ModelStatus, ModelVersion, PredictionSettings

from .conftest import registry_row

pytestmark = pytest.mark.django_db


def _versions(tenant):
    return ModelVersion.objects.for_institution(tenant.institution)


def test_model_page_shows_live_model_report_with_charts_and_baselines(client, trained_a):
    client.force_login(trained_a.viewer)
    response = client.get(reverse("model-list", args=["alpha"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Live v{trained_a.version.number}" in body
    assert "Logistic regression" in body and "LightGBM (this model)" in body
    assert 'id="model-v1-calibration-data"' in body and 'id="model-v1-importance-data"' in body
    assert "chart.umd.min.js" in body
    # A viewer sees the report but no decision buttons.
    assert "Retrain now" not in body


def test_fairness_table_names_protected_attributes_by_their_schema_labels(client, trained_a):
    client.force_login(trained_a.admin)
    response = client.get(reverse("model-list", args=["alpha"]))
    body = response.content.decode()
    assert "<td>Gender</td>" in body
    assert "<td>gender</td>" not in body


def test_model_detail_page_shows_card_and_gate(client, trained_a):
    client.force_login(trained_a.admin)
    response = client.get(reverse("model-detail", args=["alpha", trained_a.version.number]))
    assert response.status_code == 200
    assert b"Promotion gate" in response.content and b"Limitations" in response.content


@pytest.mark.parametrize("name", ["model-list", "prediction-job-list", "prediction-settings"])
def test_member_of_other_institution_gets_404_on_model_pages(client, tenants, name):
    _a, b = tenants
    client.force_login(b.admin)
    assert client.get(reverse(name, args=["alpha"])).status_code == 404


def test_admin_gets_404_on_other_institutions_version_number(client, tenants):
    a, b = tenants
    registry_row(b.institution, number=7)
    client.force_login(a.admin)
    assert client.get(reverse("model-detail", args=["alpha", 7])).status_code == 404
    for action in ("model-promote", "model-reject"):
        assert client.post(reverse(action, args=["alpha", 7])).status_code == 404
    assert _versions(b).get(number=7).status == ModelStatus.CANDIDATE


def test_admin_promotes_a_candidate_and_rolls_back_in_one_action(client, tenants):
    a, b = tenants
    first = registry_row(a.institution, number=1, status=ModelStatus.CANDIDATE)
    b_live = registry_row(b.institution, number=1, status=ModelStatus.LIVE)
    client.force_login(a.admin)
    client.post(reverse("model-promote", args=["alpha", 1]), {"note": "looks good"})
    registry_row(a.institution, number=2)
    client.post(reverse("model-promote", args=["alpha", 2]))
    assert _versions(a).get(number=2).status == ModelStatus.LIVE
    assert _versions(a).get(number=1).status == ModelStatus.RETIRED

    response = client.post(reverse("model-rollback", args=["alpha"]))
    assert response.status_code == 302
    assert _versions(a).get(pk=first.pk).status == ModelStatus.LIVE
    assert _versions(a).get(number=2).status == ModelStatus.RETIRED
    assert _versions(a).get(pk=first.pk).decision_note == "rollback"
    # B's live model is untouched, and every promotion queued a rescore of A only.
    assert _versions(b).get(pk=b_live.pk).status == ModelStatus.LIVE
    assert Job.objects.for_institution(a.institution).filter(kind=JobKind.RESCORE).exists()
    assert not Job.objects.for_institution(b.institution).exists()
    # Going live put the default schedules (daily rescore, weekly retrain) in beat's table.
    assert set(PeriodicTask.objects.filter(name__endswith=f"institution-{a.institution.pk}")
               .values_list("task", flat=True)) == {"predictions.tasks.scheduled_rescore",
                                                    "predictions.tasks.scheduled_retrain"}


def test_admin_rejects_a_candidate(client, tenant_a):
    registry_row(tenant_a.institution, number=1)
    client.force_login(tenant_a.admin)
    client.post(reverse("model-reject", args=["alpha", 1]), {"note": "fairness gap too wide", "confirm": "on"})
    version = _versions(tenant_a).get(number=1)
    assert version.status == ModelStatus.REJECTED
    assert version.decided_by == tenant_a.admin and version.decision_note == "fairness gap too wide"


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_non_admin_cannot_promote_reject_retrain_or_edit_settings(client, tenant_a, role):
    registry_row(tenant_a.institution, number=1)
    client.force_login(getattr(tenant_a, role))
    slug = "alpha"
    for url in (reverse("model-promote", args=[slug, 1]), reverse("model-reject", args=[slug, 1]),
                reverse("model-rollback", args=[slug]), reverse("model-retrain", args=[slug]),
                reverse("prediction-rescore", args=[slug]), reverse("prediction-settings", args=[slug])):
        assert client.post(url).status_code == 403, url
    assert client.get(reverse("prediction-settings", args=[slug])).status_code == 403
    assert _versions(tenant_a).get(number=1).status == ModelStatus.CANDIDATE
    assert not Job.objects.for_institution(tenant_a.institution).exists()


def test_retrain_button_queues_one_job_and_a_second_click_joins_it(client, tenant_a):
    client.force_login(tenant_a.admin)
    url = reverse("model-retrain", args=["alpha"])
    client.post(url)
    response = client.post(url, follow=True)
    jobs = Job.objects.for_institution(tenant_a.institution).filter(kind=JobKind.RETRAIN)
    assert jobs.count() == 1
    assert b"your request joined it" in response.content


def test_settings_page_saves_gate_and_creates_schedules_in_the_database(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    data = {
        "flag_rule": "capacity", "flag_threshold": 0.5, "flag_capacity": 25, "band_medium_from": 0.25,
        "band_high_from": 0.55, "auto_promote": "on", "min_training_size": 150, "max_auc_drop": 0.02,
        "max_brier_increase": 0.005, "max_fairness_gap": 0.15, "min_fairness_group_size": 40, "search_iterations": 4,
        "rescore_schedule": "daily",
        "retrain_schedule": "weekly", "schedule_hour": 3, "rescore_after_import": "on",
    }
    response = client.post(reverse("prediction-settings", args=["alpha"]), data)
    assert response.status_code == 302
    saved = PredictionSettings.objects.for_institution(a.institution).get()
    assert (saved.flag_rule, saved.flag_capacity, saved.min_training_size) == ("capacity", 25, 150)
    assert saved.min_fairness_group_size == 40 and saved.max_brier_increase == 0.005
    tasks = {t.task: t for t in PeriodicTask.objects.filter(name__contains=f"institution-{a.institution.pk}")}
    assert set(tasks) == {"predictions.tasks.scheduled_rescore", "predictions.tasks.scheduled_retrain"}
    rescore = tasks["predictions.tasks.scheduled_rescore"]
    assert rescore.kwargs == f'{{"institution_id": {a.institution.pk}}}'
    assert (rescore.crontab.hour, rescore.crontab.timezone.key) == ("3", "Europe/Lisbon")
    assert tasks["predictions.tasks.scheduled_retrain"].crontab.day_of_week == "1"
    assert not PeriodicTask.objects.filter(name__contains=f"institution-{b.institution.pk}").exists()

    data["retrain_schedule"] = "off"
    client.post(reverse("prediction-settings", args=["alpha"]), data)
    assert not PeriodicTask.objects.filter(task="predictions.tasks.scheduled_retrain").exists()


def test_settings_page_rejects_bands_in_the_wrong_order_and_saves_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(reverse("prediction-settings", args=["alpha"]), {
        "flag_rule": "threshold", "flag_threshold": 0.5, "flag_capacity": 25, "band_medium_from": 0.7,
        "band_high_from": 0.4, "min_training_size": 150, "max_auc_drop": 0.02, "max_brier_increase": 0.01,
        "max_fairness_gap": 0.15,
        "min_fairness_group_size": 30, "search_iterations": 4, "rescore_schedule": "daily",
        "retrain_schedule": "weekly", "schedule_hour": 3,
    })
    assert response.status_code == 200
    assert b"high band must start above the medium band" in response.content
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).exists()
    assert not PeriodicTask.objects.filter(name__startswith="predictions:").exists()


def test_jobs_page_shows_a_progress_bar_that_polls_until_done(client, tenants):
    a, b = tenants
    job, _ = job_create(institution=a.institution, kind=JobKind.RESCORE)
    Job.objects.for_institution(a.institution).filter(pk=job.pk).update(
        status="running", progress_done=30, progress_total=120, stage="scoring with model v1")
    b_job, _ = job_create(institution=b.institution, kind=JobKind.RESCORE)
    client.force_login(a.viewer)
    body = client.get(reverse("prediction-job-list", args=["alpha"])).content.decode()
    assert 'aria-valuenow="25"' in body and "scoring with model v1" in body and "htmx.min.js" in body
    assert f"#{b_job.pk}<" not in body
    fragment = client.get(reverse("prediction-job-progress", args=["alpha", job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in fragment
    assert client.get(reverse("prediction-job-progress", args=["alpha", b_job.pk])).status_code == 404
    with institution_scope(a.institution):
        Job.objects.filter(pk=job.pk).update(status="succeeded")
    fragment = client.get(reverse("prediction-job-progress", args=["alpha", job.pk])).content.decode()
    assert "hx-trigger" not in fragment and 'aria-valuenow="100"' in fragment


def test_removing_an_institution_removes_its_schedules_and_only_its(client, tenants):
    a, b = tenants
    for tenant in (a, b):
        client.force_login(tenant.admin)
        assert client.post(reverse("prediction-settings", args=[tenant.institution.slug]), {
            "flag_rule": "threshold", "flag_threshold": 0.5, "flag_capacity": 25, "band_medium_from": 0.25,
            "band_high_from": 0.55, "min_training_size": 150, "max_auc_drop": 0.02, "max_brier_increase": 0.01,
            "max_fairness_gap": 0.15, "min_fairness_group_size": 30, "search_iterations": 4,
            "rescore_schedule": "daily", "retrain_schedule": "weekly", "schedule_hour": 3,
        }).status_code == 302
    b_names = set(PeriodicTask.objects.filter(name__endswith=f":institution-{b.institution.pk}")
                  .values_list("name", flat=True))
    assert len(b_names) == 2
    from institutions.models import Institution

    Institution.objects.filter(pk=a.institution.pk).delete()
    assert not PeriodicTask.objects.filter(name__endswith=f":institution-{a.institution.pk}").exists()
    assert set(PeriodicTask.objects.filter(name__endswith=f":institution-{b.institution.pk}")
               .values_list("name", flat=True)) == b_names
