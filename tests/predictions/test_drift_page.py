"""The model page compares today's students with the version's training students (drift)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.scoping import institution_scope
from predictions.models import ModelVersion
from predictions.selectors import model_drift
from students.models import Student
from students.selectors import current_students

pytestmark = pytest.mark.django_db


def _page(client, tenant, number):
    return client.get(reverse("model-detail", kwargs={"institution_slug": tenant.institution.slug,
                                                      "number": number}))


def test_a_model_records_its_training_spread_and_its_page_says_todays_students_are_alike(trained_a, client):
    version = trained_a.version
    profile = version.model_card["feature_profile"]
    assert set(profile["features"]) == {"units_approved", "tuition_up_to_date"}  # gender is protected
    client.force_login(trained_a.admin)
    page = _page(client, trained_a, version.number).content.decode()
    assert "No input has shifted much since training." in page
    assert "Consider retraining" not in page


def test_shifted_inputs_make_the_page_suggest_retraining(trained_a, client):
    institution = trained_a.institution
    with institution_scope(institution):
        for student in current_students(institution=institution):
            student.features = {**student.features, "units_approved": 30.0}
            student.save(update_fields=["features"])
        report = model_drift(institution=institution, version=trained_a.version)
    units = next(f for f in report["features"] if f["key"] == "units_approved")
    assert units["status"] == "major" and units["label"] == "Units approved"
    assert report["retrain_suggested"] and report["rows_now"] == report["current_students"]
    client.force_login(trained_a.advisor)
    page = _page(client, trained_a, trained_a.version.number).content.decode()
    assert "Consider retraining." in page and "Major shift" in page


def test_a_version_without_a_profile_says_so_and_the_sample_is_bounded(trained_a, client, settings, monkeypatch):
    institution = trained_a.institution
    with institution_scope(institution):
        card = {k: v for k, v in trained_a.version.model_card.items() if k != "feature_profile"}
        ModelVersion.objects.filter(pk=trained_a.version.pk).update(model_card=card)
    client.force_login(trained_a.admin)
    assert "was trained before the platform recorded" in _page(client, trained_a, trained_a.version.number) \
        .content.decode()
    monkeypatch.setattr("predictions.selectors.DRIFT_SAMPLE", 10)
    with institution_scope(institution):
        trained_a.version.refresh_from_db()
        ModelVersion.objects.filter(pk=trained_a.version.pk).update(
            model_card={**card, "feature_profile": {"rows": 5, "features": {
                "units_approved": {"kind": "numeric", "missing": 0.0, "edges": [5.0], "shares": [0.5, 0.5]}}}})
        trained_a.version.refresh_from_db()
        report = model_drift(institution=institution, version=trained_a.version)
        current = current_students(institution=institution).count()
    assert report["current_students"] == current and 0 < report["rows_now"] <= 10 + 1


def test_another_institutions_model_page_is_not_found(trained_a, tenant_b, client):
    client.force_login(tenant_b.admin)
    response = client.get(reverse("model-detail", kwargs={"institution_slug": tenant_b.institution.slug,
                                                          "number": trained_a.version.number}))
    assert response.status_code == 404
    assert not Student.objects.for_institution(tenant_b.institution).filter(features__units_approved=30.0).exists()
