"""Did the predictions come true? Realised performance of a version on the students it scored
whose outcome came in later; a daily check that alerts the administrators (in-app) and the
integrators (model.degraded) once when it falls below the institution's floor."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from sklearn.metrics import roc_auc_score

from institutions.api_keys import ALL_SCOPES, api_key_create
from institutions.models import WebhookDelivery
from institutions.scoping import institution_scope
from institutions.webhooks import webhook_endpoint_create
from ml.realised import realised_performance
from predictions.models import LatestPrediction, PredictionSettings
from predictions.selectors import model_realised
from predictions.services.realised import realised_check
from students.models import Outcome, Student
from workspace.models import Notification

from .conftest import rescore

pytestmark = pytest.mark.django_db


def test_realised_figures_are_the_standard_ones_with_an_interval_and_none_on_too_few():
    rng = np.random.default_rng(4)
    risk = rng.random(400)
    outcome = (rng.random(400) < risk).astype(int)
    report = realised_performance(risk, outcome, flag_share=0.2)
    auc = report["roc_auc"]
    assert auc["value"] == pytest.approx(roc_auc_score(outcome, risk))
    assert auc["low"] < auc["value"] < auc["high"]
    assert report["brier"] == pytest.approx(np.mean((risk - outcome) ** 2))
    assert report["at_capacity"]["flagged"] == 80
    assert sum(row["count"] for row in report["calibration"]) == 400
    few = realised_performance(risk[:20], outcome[:20])
    assert few["roc_auc"] is None and few["enough"] is False and few["students"] == 20


def _outcomes_arrive(tenant, *, days_after: int = 5, good: bool = True) -> list[int]:
    """The current students' outcomes are recorded ``days_after`` the scoring: the riskier half
    leaves (``good``: the model was right) or stays (it was wrong)."""
    institution = tenant.institution
    with institution_scope(institution):
        rows = list(LatestPrediction.objects.order_by("-risk", "student_id").values_list("student_id", "risk"))
        day = datetime.date.today() + datetime.timedelta(days=days_after)
        half = len(rows) // 2
        for n, (student_id, _risk) in enumerate(rows):
            left = (n < half) == good
            Student.objects.filter(pk=student_id).update(
                outcome=Outcome.DROPPED_OUT if left else Outcome.GRADUATED, outcome_date=day)
    return [student_id for student_id, _ in rows]


def test_a_versions_realised_performance_uses_only_students_it_scored_before_their_outcome(trained_a):
    rescore(trained_a)
    scored = _outcomes_arrive(trained_a)
    with institution_scope(trained_a.institution):
        report = model_realised(institution=trained_a.institution, version=trained_a.version)
    overall = report["overall"]
    assert overall["students"] == len(scored) and overall["leavers"] == len(scored) // 2
    assert overall["roc_auc"]["value"] == pytest.approx(1.0)  # the riskier half left
    assert [p["students"] for p in report["periods"]] == [len(scored)]
    # An outcome recorded before the student was scored is no test of the prediction.
    with institution_scope(trained_a.institution):
        Student.objects.filter(pk=scored[0]).update(outcome_date=datetime.date.today() - datetime.timedelta(days=30))
        again = model_realised(institution=trained_a.institution, version=trained_a.version)
    assert again["overall"]["students"] == len(scored) - 1


def test_below_the_floor_the_administrators_and_integrators_are_told_once(trained_a, tenant_b,
                                                                          django_capture_on_commit_callbacks):
    a = trained_a
    rescore(a)
    _outcomes_arrive(a, good=False)  # the model ranked them the wrong way round
    with institution_scope(a.institution):
        webhook_endpoint_create(institution=a.institution, url="http://127.0.0.1:9/hook", events=["model.degraded"])
        with django_capture_on_commit_callbacks(execute=True):
            summary = realised_check(institution=a.institution)
    assert summary["degraded"] is True and summary["roc_auc"]["value"] < 0.5
    notes = Notification.objects.for_institution(a.institution).filter(kind="model_degraded")
    assert list(notes.values_list("user_id", flat=True)) == [a.admin.pk]
    assert notes.get().url == reverse("model-detail", args=[a.institution.slug, a.version.number])
    deliveries = WebhookDelivery.objects.for_institution(a.institution).filter(event="model.degraded")
    assert deliveries.count() == 1
    assert f'"number": {a.version.number}' in json.dumps(deliveries.get().payload)
    with institution_scope(a.institution), django_capture_on_commit_callbacks(execute=True):
        realised_check(institution=a.institution)  # still below: no second alert
    assert notes.count() == 1 and deliveries.count() == 1
    a.version.refresh_from_db()
    assert a.version.realised["degraded"] is True
    assert not Notification.objects.for_institution(tenant_b.institution).exists()
    with institution_scope(tenant_b.institution):
        assert realised_check(institution=tenant_b.institution) is None  # no live model there


def test_above_the_floor_nobody_is_alerted(trained_a, django_capture_on_commit_callbacks):
    rescore(trained_a)
    _outcomes_arrive(trained_a, good=True)
    with institution_scope(trained_a.institution), django_capture_on_commit_callbacks(execute=True):
        assert realised_check(institution=trained_a.institution)["degraded"] is False
    assert not Notification.objects.for_institution(trained_a.institution).filter(kind="model_degraded").exists()


def test_the_model_page_and_the_api_show_it_to_their_own_institution_only(trained_a, tenant_b, client):
    rescore(trained_a)
    _outcomes_arrive(trained_a)
    client.force_login(trained_a.advisor)
    page = client.get(reverse("model-detail", args=[trained_a.institution.slug, trained_a.version.number]))
    assert "predictions come true?" in page.content.decode() and "Realised ROC-AUC" in page.content.decode()
    _key, raw = api_key_create(institution=trained_a.institution, name="BI", scopes=list(ALL_SCOPES))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = f"/api/v1/institutions/{trained_a.institution.slug}/model-versions/{trained_a.version.number}/realised/"
    response = api.get(url)
    body = response.json()
    assert response.status_code == 200, body
    assert body["version"] == trained_a.version.number and body["overall"]["roc_auc"]["value"] == pytest.approx(1.0)
    _key_b, raw_b = api_key_create(institution=tenant_b.institution, name="BI", scopes=list(ALL_SCOPES))
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_b}")
    assert other.get(url).status_code in (403, 404)
    foreign = f"/api/v1/institutions/{tenant_b.institution.slug}/model-versions/{trained_a.version.number}/realised/"
    assert other.get(foreign).status_code == 404


def test_the_floor_is_a_setting_of_the_institution(trained_a):
    settings = PredictionSettings.objects.for_institution(trained_a.institution).get()
    assert settings.realised_auc_floor == 0.7
