"""The instructor-concerns switch on the model settings page: preview, who changed it, tenancy."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.scoping import institution_scope
from predictions.models import PredictionSettings
from predictions.services.concern_feature import CONCERNS_FEATURE_KEY
from students.models import FeatureDefinition, FeatureKind, Outcome, Student, StudentChange

from .test_concern_feature import Surveys, _today

URL = "prediction-concern-feature"


@pytest.fixture
def marked(tenants):
    """A: one current student with a concern this term. B: three (so a leak would show)."""
    tenant_a, tenant_b = tenants
    with institution_scope(tenant_a.institution):
        a = Surveys(tenant_a.institution, _today(tenant_a))
        a.mark(next(s for s in tenant_a.students if s.outcome == Outcome.ENROLLED))
    with institution_scope(tenant_b.institution):
        b = Surveys(tenant_b.institution, _today(tenant_b))
        for student in [s for s in tenant_b.students if s.outcome == Outcome.ENROLLED][:3]:
            b.mark(student)
    return a, b


def _page(client, slug="alpha"):
    return client.get(reverse("prediction-settings", args=[slug])).content.decode()


def test_settings_page_previews_switching_on_with_this_institutions_figures(client, tenants, marked):
    tenant_a, _ = tenants
    client.force_login(tenant_a.admin)
    page = _page(client)
    assert "Switching it on:" in page
    assert f"<code>{CONCERNS_FEATURE_KEY}</code>" in page
    current = sum(1 for s in tenant_a.students if s.outcome == Outcome.ENROLLED)
    assert f'<strong id="concern-feature-current">1</strong> of {current} current students' in page
    assert "the next retrain uses it; nobody is rescored" in page
    assert "Training rows (students with a known outcome) with a count above 0" in page
    assert "This term" in page
    assert "Now <strong>off</strong>." in page


def test_admin_switches_it_on_and_the_page_says_who_did_it(client, tenants, marked):
    tenant_a, tenant_b = tenants
    client.force_login(tenant_a.admin)
    response = client.post(reverse(URL, args=["alpha"]), {"enabled": "on"}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "is in the data schema and every current student&#x27;s count is written" in page
    assert "Now <strong>on</strong>." in page and "by alpha-admin" in page
    assert "added to the schema" in page
    assert "Switching it off:" in page
    assert FeatureDefinition.objects.for_institution(tenant_a.institution).filter(
        key=CONCERNS_FEATURE_KEY, retired_at__isnull=True).exists()
    assert not FeatureDefinition.objects.for_institution(tenant_b.institution).filter(
        key=CONCERNS_FEATURE_KEY).exists()

    response = client.post(reverse(URL, args=["alpha"]), {}, follow=True)  # the box unticked: off
    assert "is retired: the next retrain leaves it out" in response.content.decode()
    assert FeatureDefinition.objects.for_institution(tenant_a.institution).get(key=CONCERNS_FEATURE_KEY).is_retired
    assert "retired" in _page(client)


def test_admin_of_one_institution_cannot_switch_it_in_another(client, tenants, marked):
    tenant_a, tenant_b = tenants
    client.force_login(tenant_a.admin)
    b_features = {s.pk: s.features for s in Student.objects.for_institution(tenant_b.institution)}

    response = client.post(reverse(URL, args=["beta"]), {"enabled": "on"})

    assert response.status_code == 404
    assert not PredictionSettings.objects.for_institution(tenant_b.institution).filter(concerns_feature=True).exists()
    assert not FeatureDefinition.objects.for_institution(tenant_b.institution).filter(
        key=CONCERNS_FEATURE_KEY).exists()
    assert {s.pk: s.features for s in Student.objects.for_institution(tenant_b.institution)} == b_features
    assert not StudentChange.objects.for_institution(tenant_b.institution).exists()
    assert client.get(reverse("prediction-settings", args=["beta"])).status_code == 404


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_administrators_switch_it(client, tenants, marked, role):
    tenant_a, _ = tenants
    client.force_login(getattr(tenant_a, role))
    assert client.post(reverse(URL, args=["alpha"]), {"enabled": "on"}).status_code == 403
    assert not FeatureDefinition.objects.for_institution(tenant_a.institution).filter(
        key=CONCERNS_FEATURE_KEY).exists()


def test_a_clashing_feature_gets_a_specific_message_and_changes_nothing(client, tenants):
    tenant_a, _ = tenants
    FeatureDefinition.objects.for_institution(tenant_a.institution).create(
        key=CONCERNS_FEATURE_KEY, label="Our own concerns", kind=FeatureKind.BOOLEAN)
    client.force_login(tenant_a.admin)
    response = client.post(reverse(URL, args=["alpha"]), {"enabled": "on"}, follow=True)
    assert response.status_code == 200
    assert "already has a yes/no feature" in response.content.decode()
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).filter(concerns_feature=True).exists()


def test_the_general_settings_form_cannot_switch_it(client, tenants):
    tenant_a, _ = tenants
    from predictions.services.settings import prediction_settings_update

    client.force_login(tenant_a.admin)
    data = {"flag_rule": "capacity", "flag_threshold": 0.5, "flag_capacity": 25, "band_medium_from": 0.25,
            "band_high_from": 0.55, "min_training_size": 150, "max_auc_drop": 0.02, "max_brier_increase": 0.005,
            "max_fairness_gap": 0.15, "min_fairness_group_size": 40, "search_iterations": 4,
            "rescore_schedule": "daily", "retrain_schedule": "weekly", "schedule_hour": 3, "concerns_feature": "on"}
    assert client.post(reverse("prediction-settings", args=["alpha"]), data).status_code == 302
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).get().concerns_feature
    with institution_scope(tenant_a.institution), pytest.raises(ValueError, match="concern_feature_set"):
        prediction_settings_update(institution=tenant_a.institution, data={"concerns_feature": True})


def test_the_students_profile_shows_the_count_in_its_data_change_history(client, tenants, marked):
    tenant_a, _ = tenants
    student = next(s for s in tenant_a.students if s.outcome == Outcome.ENROLLED)
    client.force_login(tenant_a.admin)
    client.post(reverse(URL, args=["alpha"]), {"enabled": "on"})
    body = client.get(reverse("student-detail", args=["alpha", student.pk])).content.decode()
    assert "Progress surveys (platform)" in body
    assert "Instructor concerns this term" in body
