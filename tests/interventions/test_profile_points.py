"""The profile's factors in points of the shown risk, through a real model trained and scored here."""

import pytest
from django.urls import reverse

from predictions.models import LatestPrediction, Prediction
from tests.predictions.conftest import rescore

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_profile_bars_and_sentences_are_in_points_that_add_up_to_the_shown_risk(client, trained_a, tenant_b):
    a = trained_a
    rescore(a)
    latest = LatestPrediction.objects.for_institution(a.institution).select_related("prediction").first()
    factors = latest.prediction.factors
    assert factors and all("points" in f and " point" in f["text"] for f in factors)
    client.force_login(a.advisor)
    response = client.get(reverse("student-detail", args=["alpha", latest.student_id]))
    content = response.content.decode()
    breakdown = response.context["breakdown"]
    base_risk = a.version.model_card["explanations"]["base_risk"]
    assert breakdown["base_risk"] == pytest.approx(base_risk)
    assert breakdown["base_risk"] * 100 + breakdown["shown_points"] + breakdown["other_points"] == pytest.approx(
        100 * latest.risk)
    assert 'id="risk-breakdown"' in content and f"{100 * base_risk:.1f}%" in content
    bars = response.context["factors"]
    largest = max(abs(f["points"]) for f in bars)
    assert all(f["in_points"] and f["width"] == round(100 * abs(f["points"]) / largest, 1) for f in bars)
    assert factors[0]["text"] in content
    # Another institution's advisor gets the same 404 as for a missing student.
    client.force_login(tenant_b.advisor)
    assert client.get(reverse("student-detail", args=["alpha", latest.student_id])).status_code == 404


def test_a_prediction_stored_before_points_still_renders_in_relative_log_odds(client, trained_a):
    a = trained_a
    rescore(a)
    latest = LatestPrediction.objects.for_institution(a.institution).first()
    old = [{key: value for key, value in f.items() if key not in {"points", "observed"}}
           for f in Prediction.objects.for_institution(a.institution).get(pk=latest.prediction_id).factors]
    Prediction.objects.for_institution(a.institution).filter(pk=latest.prediction_id).update(factors=old)
    client.force_login(a.advisor)
    response = client.get(reverse("student-detail", args=["alpha", latest.student_id]))
    assert response.status_code == 200 and response.context["breakdown"] is None
    assert not any(f["in_points"] for f in response.context["factors"])
    assert response.context["factors"][0]["width"] == 100.0
    assert "scored before factors were given in points" in response.content.decode()
