"""Flags sized to capacity (issue 20, item 5): the default for new institutions, capacity per term or
advisors x per advisor, an optional minimum risk, precision and recall at that k on held-out
students, and the model's threshold and fairness audit at the share the product really flags."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.models import Role
from institutions.scoping import institution_scope
from institutions.services import institution_create
from predictions.models import FlagRule, LatestPrediction, ModelVersion, PredictionSettings
from predictions.selectors import prediction_settings_get
from predictions.services.ranking import latest_predictions_rank
from tests.factories import MembershipFactory, UserFactory
from tests.interventions.conftest import record_run
from tests.predictions.conftest import fast_settings, rescore

pytestmark = pytest.mark.django_db


def test_a_new_institution_flags_by_capacity_and_an_existing_one_keeps_its_rule(tenant_a):
    created = institution_create(slug="gamma", name="Gamma College")
    assert prediction_settings_get(institution=created).flag_rule == FlagRule.CAPACITY
    assert prediction_settings_get(institution=tenant_a.institution).flag_rule == FlagRule.THRESHOLD
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).exists()


def flagged(institution):
    return list(LatestPrediction.objects.for_institution(institution).filter(flagged=True)
                .order_by("-risk").values_list("risk", flat=True))


def test_capacity_per_advisor_and_minimum_risk_decide_who_is_flagged(tenants):
    a, b = tenants
    risks = dict(zip(a.students, (0.9, 0.8, 0.7, 0.6, 0.3, 0.2), strict=True))
    record_run(a.institution, risks)
    record_run(b.institution, dict.fromkeys(b.students, 0.9))
    settings = fast_settings(a.institution, flag_rule=FlagRule.CAPACITY, flag_capacity=1, flag_capacity_per_advisor=2)
    with institution_scope(a.institution):
        assert latest_predictions_rank(institution=a.institution, settings=settings) == 2  # 1 advisor x 2
    second = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=second, role=Role.ADVISOR)
    with institution_scope(a.institution):
        assert latest_predictions_rank(institution=a.institution, settings=settings) == 4  # 2 advisors x 2
    assert flagged(a.institution) == [0.9, 0.8, 0.7, 0.6]
    settings = fast_settings(a.institution, flag_rule=FlagRule.CAPACITY, flag_capacity_per_advisor=2,
                             flag_min_risk=0.75)
    with institution_scope(a.institution):
        assert latest_predictions_rank(institution=a.institution, settings=settings) == 2
    assert flagged(a.institution) == [0.9, 0.8]
    # B's advisors and students count nowhere in A's capacity, and B's flags are B's own rule's.
    assert len(flagged(b.institution)) == len(b.students)


@pytest.mark.slow
def test_model_is_judged_at_the_share_really_flagged_and_pages_show_precision_and_recall(client, tenant_a, tenant_b):
    from predictions.services.training import model_version_train
    from tests.predictions.conftest import add_population

    a = tenant_a
    add_population(a.institution)  # 240 known outcomes, 60 current
    fast_settings(a.institution, flag_rule=FlagRule.CAPACITY, flag_capacity=10)
    with institution_scope(a.institution):
        version = model_version_train(institution=a.institution)
    current = 60 + sum(1 for s in a.students if s.outcome == "enrolled")
    share = 10 / current
    card = version.model_card
    assert card["flag_share_trained_at"] == pytest.approx(share)
    training = version.training_size
    assert card["model"]["flag_threshold_rule"].startswith(f"flags about {round(share * training)} students")
    assert (version.fairness.get("holdout") or version.fairness.get("cross_validated"))["threshold"] == \
        pytest.approx(version.threshold)
    ranking = card["holdout_ranking"]
    assert ranking["risks"] == sorted(ranking["risks"], reverse=True) and len(ranking["outcomes"]) > 20
    if version.status != "live":  # the gate's verdict is not what this test is about
        ModelVersion.objects.for_institution(a.institution).filter(pk=version.pk).update(status="live")
    rescore(a)
    assert LatestPrediction.objects.for_institution(a.institution).filter(flagged=True).count() == 10
    client.force_login(a.admin)
    page = client.get(reverse("prediction-settings", args=["alpha"]))
    quality = page.context["quality"]
    assert quality["flagged"] == -(-len(ranking["outcomes"]) * 10 // current)
    assert quality["hits"] == sum(ranking["outcomes"][:quality["flagged"]])
    assert 'id="capacity-precision"' in page.content.decode()
    detail = client.get(reverse("model-detail", args=["alpha", version.number]))
    assert detail.context["quality"] == quality and b'id="capacity-k"' in detail.content
    client.force_login(tenant_b.admin)
    assert client.get(reverse("model-detail", args=["alpha", version.number])).status_code == 404
    assert client.get(reverse("prediction-settings", args=["alpha"])).status_code == 404
