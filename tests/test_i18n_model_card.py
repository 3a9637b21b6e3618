"""The model card's sentences in the reader's language (docs/model_card.md): ml keeps each sentence
as data beside its English; the model page words it in Spanish or Portuguese with the institution's
labels, and a card written before keeps what it cannot recognise as stored."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from ml.model_card import INTENDED_USE, OUT_OF_SCOPE, OUT_OF_SCOPE_TEXT, limitation_text
from predictions.model_card_text import limitation_sentence, model_card_sections
from students.models import FeatureDefinition
from tests.predictions.conftest import registry_row

LIMITATIONS = [
    {"code": "past_students"}, {"code": "calibration_drift"}, {"code": "explanations_not_causes"},
    {"code": "small_training_set", "rows": 240, "dropped_out": 80}, {"code": "no_out_of_time"}, {"code": "proxies"},
    {"code": "small_fairness_groups", "attribute": "gender", "groups": ["x"], "min_group_size": 30},
    {"code": "strong_proxies", "attributes": [{"feature": "gender", "auc": 0.8421}]},
]
CARD = {
    "features": {"used": [{"feature": "units_approved", "label": "Units approved"}],
                 "excluded": [{"feature": "gender", "label": "Gender", "reason": "protected"}]},
    "intended_use": INTENDED_USE, "out_of_scope": OUT_OF_SCOPE,
    "limitations": [limitation_text(entry) for entry in LIMITATIONS],
    "statements": {"intended_use": "early_support", "out_of_scope": list(OUT_OF_SCOPE_TEXT),
                   "limitations": LIMITATIONS},
}


def test_the_card_composed_in_english_says_what_ml_wrote():
    labels = {"gender": "Gender"}
    with translation.override("en"):
        sections = model_card_sections(CARD, {})
        assert [s["title"] for s in sections] == ["Intended use", "Out of scope", "Limitations"]
        assert sections[0]["text"] == INTENDED_USE and sections[1]["items"] == OUT_OF_SCOPE
        assert [limitation_sentence(entry, labels) for entry in LIMITATIONS] == [
            limitation_text(entry, labels) for entry in LIMITATIONS]


def test_the_card_in_spanish_and_portuguese_names_features_by_the_readers_label():
    labels = {"gender": "Género"}
    with translation.override("es"):
        sections = model_card_sections(CARD, labels)
    assert [s["title"] for s in sections] == ["Uso previsto", "Fuera de alcance", "Limitaciones"]
    assert sections[0]["text"].startswith("Ordenar y señalar a los estudiantes matriculados")
    limitations = sections[2]["items"]
    assert limitations[3].startswith("Conjunto de entrenamiento pequeño (240 estudiantes, 80 abandonaron)")
    assert limitations[6].startswith("Equidad por Género: los grupos x tienen menos de 30 estudiantes")
    assert limitations[7].startswith("Las entradas predicen bien Género (ROC-AUC 0,84)")
    with translation.override("pt"):
        sections = model_card_sections(CARD, labels)
    assert [s["title"] for s in sections] == ["Utilização prevista", "Fora do âmbito", "Limitações"]
    assert sections[2]["items"][7].startswith("As entradas preveem bem Género (ROC-AUC 0,84)")


def test_a_card_written_before_translates_its_fixed_sentences_and_keeps_the_others():
    old = {"intended_use": INTENDED_USE, "out_of_scope": OUT_OF_SCOPE,
           "limitations": [limitation_text({"code": "past_students"}),
                           limitation_text({"code": "small_training_set", "rows": 240, "dropped_out": 80})]}
    with translation.override("pt"):
        sections = model_card_sections(old, {})
    assert sections[0]["text"].startswith("Ordenar e sinalizar os estudantes")
    assert sections[1]["items"][0] == ("Decisões de admissão, financiamento, classificação ou disciplinares sobre "
                                       "um estudante.")
    assert sections[2]["items"] == ["Treinado apenas com antigos estudantes desta instituição; reflete como os "
                                    "estudantes saíam no passado, incluindo eventuais desigualdades passadas no apoio.",
                                    old["limitations"][1]]


@pytest.mark.django_db
def test_the_model_page_shows_the_card_in_each_institutions_language(client, tenant_a, tenant_b):
    for tenant, language in ((tenant_a, "es"), (tenant_b, "pt")):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])
    FeatureDefinition.objects.for_institution(tenant_a.institution).filter(key="gender").update(
        translations={"es": {"label": "Sexo"}})
    registry_row(tenant_a.institution, number=3, model_card=CARD)
    registry_row(tenant_b.institution, number=5, model_card=CARD)
    client.force_login(tenant_a.admin)
    body = client.get(reverse("model-detail", args=[tenant_a.institution.slug, 3])).content.decode()
    assert "Limitaciones" in body and "Equidad por Sexo: los grupos x tienen menos de 30 estudiantes" in body
    assert "Trained on this institution" not in body and "Intended use" not in body
    # Another institution's version: the same 404 as a missing one, nothing of its card.
    response = client.get(reverse("model-detail", args=[tenant_a.institution.slug, 5]))
    assert response.status_code == 404 and "Limita" not in response.content.decode()
    client.force_login(tenant_b.admin)
    body = client.get(reverse("model-detail", args=[tenant_b.institution.slug, 5])).content.decode()
    assert "Utilização prevista" in body and "Equidade por Gender: os grupos x" in body
    assert "Sexo" not in body
