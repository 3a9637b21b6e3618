"""The risk factors' plain-language sentences in the reader's language (docs/translating.md): ml
stores the factor as data with an English sentence; the profile, the what-if panel and the API
compose it in Spanish or Portuguese, with the institution's labels and the locale's numbers."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from institutions.api_keys import api_key_create
from ml.explanation import factor_text, shown_parts
from ml.schema import FeatureSpec
from predictions.factor_sentences import factor_sentence, present_factors
from predictions.models import LatestPrediction, Prediction
from tests.interventions.conftest import record_run

UNITS = FeatureSpec(key="units_approved", label="units approved", kind="numeric", out_of="units_enrolled")
GRADE = FeatureSpec(key="grade", label="Admission grade", kind="numeric", unit="pts")
TUITION = FeatureSpec(key="tuition_up_to_date", label="Tuition up to date", kind="boolean")
COURSE = FeatureSpec(key="course", label="Course", kind="categorical", categories=["33"],
                     category_labels={"33": "Agronomy"})
OBSERVED = {"count": 120, "rate": 0.62, "overall_rate": 0.32, "low": 0.53, "high": 0.70}


def _factor(spec, value, contribution, points=None, observed=None, denominator=None):
    """A factor as ml.explanation.build_explanations stores it."""
    shown = shown_parts(spec, value, denominator)
    factor = {"feature": spec.key, "label": spec.label, "value": value, "shown": shown, "contribution": contribution,
              "direction": "raises" if contribution > 0 else "lowers", "actionable": spec.actionable,
              "text": factor_text(spec, shown, contribution, points, observed)}
    if points is not None:
        factor["points"] = points
    if observed is not None:
        factor["observed"] = {"count": observed["count"], "rate": observed["rate"],
                              "overall_rate": observed["overall_rate"], "contradicts": True}
    return factor


FACTORS = [
    _factor(UNITS, 2, 0.8, points=12.34, denominator=6),
    _factor(GRADE, 13.666, -0.2, points=-0.42),
    _factor(TUITION, False, 0.5),
    _factor(COURSE, "33", -0.3, points=-1.0),
    _factor(GRADE, None, -0.4, points=-3.2, observed=OBSERVED),
]


def test_the_english_sentence_composed_at_display_is_the_one_ml_stored():
    with translation.override("en"):
        assert [factor_sentence(f) for f in FACTORS] == [f["text"] for f in FACTORS]
    assert FACTORS[0]["text"] == "2 of 6 units approved — raises risk by 12 points"


def test_factor_sentences_in_spanish_and_portuguese_with_the_locales_numbers():
    with translation.override("es"):
        sentences = [factor_sentence(f) for f in FACTORS]
    assert sentences[:4] == [
        "2 de 6 units approved — aumenta el riesgo en 12 puntos",
        "Admission grade: 13,67 pts — reduce el riesgo en 0,4 puntos",
        "Tuition up to date: no — aumenta el riesgo",
        "Course: Agronomy — reduce el riesgo en 1 punto",
    ]
    assert sentences[4] == ("Admission grade: no registrado — −3,2 puntos dado el resto de este registro (por sí solo, "
                            "una señal de alerta: abandonó el 62% de los 120 estudiantes con este valor, frente al 32% "
                            "del total)")
    with translation.override("pt"):
        sentences = [factor_sentence(f) for f in FACTORS]
    assert sentences[1] == "Admission grade: 13,67 pts — reduz o risco em 0,4 pontos"
    assert sentences[2] == "Tuition up to date: não — aumenta o risco"
    assert sentences[4].startswith("Admission grade: não registado — −3,2 pontos tendo em conta o resto deste registo")


def test_the_institutions_label_replaces_the_stored_one_and_the_figures_stay_as_stored():
    with translation.override("es"):
        shown = present_factors(FACTORS[:1], {"units_approved": "unidades aprobadas"})
    assert shown[0]["text"] == "2 de 6 unidades aprobadas — aumenta el riesgo en 12 puntos"
    assert shown[0]["label"] == "unidades aprobadas" and shown[0]["display_value"] == "2 de 6"
    assert shown[0]["points"] == 12.34 and shown[0]["contribution"] == 0.8
    assert FACTORS[0]["label"] == "units approved"  # the stored factor is not changed


def test_a_factor_stored_before_its_parts_keeps_its_english_and_is_composed_in_other_languages():
    legacy = {"feature": "units_approved", "label": "units approved", "value": 2.0, "display_value": "2 of 6",
              "contribution": 0.8, "direction": "raises", "actionable": True, "points": 12.34,
              "text": "2 of 6 units approved — raises risk by 12 points"}
    missing = {"feature": "grade", "label": "Admission grade", "value": None, "display_value": "not recorded",
               "contribution": -0.1, "direction": "lowers", "text": "Admission grade: not recorded — lowers risk"}
    with translation.override("en"):
        assert factor_sentence(legacy) == legacy["text"]
    with translation.override("es"):
        assert factor_sentence(legacy) == "2 de 6 units approved — aumenta el riesgo en 12 puntos"
        assert factor_sentence(missing) == "Admission grade: no registrado — reduce el riesgo"
    with translation.override("pt"):
        assert factor_sentence(missing) == "Admission grade: não registado — reduz o risco"


def _languages(tenant_a, tenant_b):
    for tenant, language in ((tenant_a, "es"), (tenant_b, "pt")):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])


def _scored_with(tenant, factors):
    student = tenant.students[0]
    record_run(tenant.institution, {student: 0.8})
    Prediction.objects.for_institution(tenant.institution).filter(student=student).update(factors=factors)
    return student


@pytest.mark.django_db
def test_the_profile_shows_the_factors_in_each_institutions_language(client, tenant_a, tenant_b):
    _languages(tenant_a, tenant_b)
    factors = [_factor(FeatureSpec(key="units_approved", label="Units approved", kind="numeric"), 2.5, 0.7,
                       points=4.25)]
    student_a, student_b = _scored_with(tenant_a, factors), _scored_with(tenant_b, factors)
    client.force_login(tenant_a.advisor)
    body = client.get(reverse("student-detail", args=[tenant_a.institution.slug, student_a.pk])).content.decode()
    assert "Units approved: 2,5 — aumenta el riesgo en 4,2 puntos" in body
    assert "raises risk" not in body and "Each bar is" not in body
    assert 'data-axis-label="Riesgo (%)"' in body  # the risk history chart's axis
    # Another institution's student: the same 404 as a missing one, and none of its factors.
    response = client.get(reverse("student-detail", args=[tenant_a.institution.slug, student_b.pk]))
    assert response.status_code == 404 and "Units approved: 2,5" not in response.content.decode()
    client.force_login(tenant_b.advisor)
    body = client.get(reverse("student-detail", args=[tenant_b.institution.slug, student_b.pk])).content.decode()
    assert "Units approved: 2,5 — aumenta o risco em 4,2 pontos" in body
    assert 'data-axis-label="Risco (%)"' in body
    assert "raises risk" not in body


@pytest.mark.django_db
def test_the_api_gives_the_sentence_in_the_requests_language_and_keeps_its_figures(api_client, tenant_a, tenant_b):
    factors = [_factor(FeatureSpec(key="tuition_up_to_date", label="Tuition up to date", kind="boolean"), True, -0.6,
                       points=-7.5)]
    student = _scored_with(tenant_a, factors)
    _key, raw = api_key_create(institution=tenant_a.institution, name="SIS", scopes=["predictions:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = reverse("api-student-prediction", args=[tenant_a.institution.slug, student.pk])
    english = api_client.get(url).json()["factors"][0]
    assert english["text"] == "Tuition up to date: yes — lowers risk by 7.5 points"
    spanish = api_client.get(url, HTTP_ACCEPT_LANGUAGE="es-CO,es;q=0.9").json()["factors"][0]
    assert spanish["text"] == "Tuition up to date: sí — reduce el riesgo en 7,5 puntos"
    assert spanish["display_value"] == "sí"
    assert (spanish["points"], spanish["contribution"], spanish["direction"]) == (-7.5, -0.6, "lowers")
    listed = api_client.get(reverse("api-latest-prediction-list", args=[tenant_a.institution.slug]),
                            HTTP_ACCEPT_LANGUAGE="pt").json()["results"]
    assert listed[0]["factors"][0]["text"] == "Tuition up to date: sim — reduz o risco em 7,5 pontos"
    # Institution B's key cannot read A's student's prediction, in any language.
    _key, raw_b = api_key_create(institution=tenant_b.institution, name="SIS", scopes=["predictions:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_b}")
    response = api_client.get(reverse("api-student-prediction", args=[tenant_b.institution.slug, student.pk]),
                              HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 404 and "Tuition" not in response.content.decode()
    assert LatestPrediction.objects.for_institution(tenant_b.institution).count() == 0


@pytest.mark.django_db
def test_the_what_if_panel_says_why_it_cannot_recompute_in_the_institutions_language(client, tenant_a, tenant_b):
    import json

    _languages(tenant_a, tenant_b)
    for tenant, nothing, no_model in ((tenant_a, "Cambie al menos un valor.", "Todavía no hay un modelo activo"),
                                      (tenant_b, "Altere pelo menos um valor.", "Ainda não há um modelo ativo")):
        client.force_login(tenant.advisor)
        url = reverse("student-what-if", args=[tenant.institution.slug, tenant.students[0].pk])
        refused = client.post(url, json.dumps({"changes": {}}), content_type="application/json")
        assert refused.status_code == 400 and refused.json()["message"] == nothing
        refused = client.post(url, json.dumps({"changes": {"units_approved": 3}}), content_type="application/json")
        assert refused.status_code == 400 and refused.json()["message"].startswith(no_model)
    # Another institution's student: the same 404 as a missing one.
    url = reverse("student-what-if", args=[tenant_b.institution.slug, tenant_a.students[0].pk])
    assert client.post(url, json.dumps({"changes": {"units_approved": 3}}),
                       content_type="application/json").status_code == 404
