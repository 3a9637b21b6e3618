"""The model card's proxy check (what the inputs carry of each protected attribute) on the model page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.scoping import institution_scope
from students.models import FeatureDefinition

pytestmark = pytest.mark.django_db


def test_a_trained_models_card_holds_the_proxy_check_and_the_page_shows_it_with_labels(client, trained_a,
                                                                                       tenant_b):
    card = trained_a.version.model_card
    gender = card["proxy_check"]["gender"]
    # Gender is drawn independently of the inputs in this population: no better than chance.
    assert gender["interval"][0] < 0.5 < gender["interval"][1] or abs(gender["auc"] - 0.5) < 0.1
    assert gender["rows"] == card["data"]["rows"] and sorted(gender["classes"]) == ["f", "m"]
    assert set(gender["top_inputs"]) <= {"units_approved", "tuition_up_to_date"} and gender["top_inputs"]

    # Labels come from the schema as it stands: renaming a category shows on the page.
    with institution_scope(trained_a.institution):
        definition = FeatureDefinition.objects.for_institution(trained_a.institution).get(key="gender")
        definition.categories = [{"value": "f", "label": "Woman"}, {"value": "m", "label": "Man"}]
        definition.save()
    client.force_login(trained_a.viewer)
    body = client.get(reverse("model-detail", args=["alpha", trained_a.version.number])).content.decode()
    assert "How well the inputs predict each protected attribute" in body
    section = body.split("How well the inputs predict each protected attribute", 1)[1].split("</section>", 1)[0]
    assert "Gender" in section and "Woman, Man" in section
    assert "Units approved" in section or "Tuition up to date" in section
    assert "units_approved" not in section and "tuition_up_to_date" not in section
    assert f"{gender['auc']:.3f}" in section
    assert "Flags that were right (precision)" in body

    # Another institution's model page never shows this institution's check.
    client.force_login(tenant_b.viewer)
    other = client.get(reverse("model-list", args=["beta"])).content.decode()
    assert "How well the inputs predict each protected attribute" not in other
    assert client.get(reverse("model-detail", args=["alpha", trained_a.version.number])).status_code == 404
