"""A feature's label and description per language (es, pt): entered on the schema's feature edit
page or through the API, recorded in the feature's history, shown to readers of that language on
the profile, the what-if form and the factor sentences (else the default label), never another
institution's. Two institutions throughout."""

from __future__ import annotations

import pytest
from django.urls import reverse

from students.models import ChangeSource, FeatureDefinition, FeatureDefinitionChange
from students.uci_schema import UCI_COLUMNS, uci_translations
from tests.interventions.conftest import record_run

from .test_feature_schema import edit_url, feature, review_and_save

pytestmark = pytest.mark.django_db


def test_admin_enters_a_spanish_and_portuguese_label_after_a_review_and_the_change_is_recorded(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    definition = feature(a, "units_approved")
    form = client.get(edit_url(a, definition)).context["form"]
    assert {"label_es", "description_es", "label_pt", "description_pt"} <= set(form.fields)
    review, saved = review_and_save(client, edit_url(a, definition), label_es="  Asignaturas aprobadas ",
                                    description_es="Asignaturas aprobadas en el semestre",
                                    label_pt="Unidades curriculares aprovadas")
    assert review.context["preview"].changes == {
        "label_es": ["", "Asignaturas aprobadas"], "description_es": ["", "Asignaturas aprobadas en el semestre"],
        "label_pt": ["", "Unidades curriculares aprovadas"]}
    assert "label (Español)" in review.content.decode()
    assert saved.status_code == 302
    definition.refresh_from_db()
    assert definition.translations == {
        "es": {"label": "Asignaturas aprobadas", "description": "Asignaturas aprobadas en el semestre"},
        "pt": {"label": "Unidades curriculares aprovadas"}}
    assert definition.label == "Units approved"  # the default label is unchanged
    change = FeatureDefinitionChange.objects.for_institution(a.institution).filter(feature=definition).first()
    assert change.actor == a.admin and change.source == ChangeSource.WEB
    assert change.changes["label_pt"] == ["", "Unidades curriculares aprovadas"]
    # Emptying a translation removes it (the default label shows again), recorded the same way.
    review_and_save(client, edit_url(a, definition), label_pt="")
    definition.refresh_from_db()
    assert "pt" not in definition.translations
    assert FeatureDefinitionChange.objects.for_institution(a.institution).filter(feature=definition).first(
    ).changes == {"label_pt": ["Unidades curriculares aprovadas", ""]}
    # Institution B's feature of the same key is untouched.
    assert feature(b, "units_approved").translations == {}


def test_a_translation_longer_than_a_label_may_be_is_refused_and_changes_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    definition = feature(tenant_a, "units_approved")
    form = client.get(edit_url(tenant_a, definition)).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() not in (None, False)}
    response = client.post(edit_url(tenant_a, definition), {**data, "label_es": "x" * 201})
    assert response.status_code == 400 and "label_es" in response.context["form"].errors
    definition.refresh_from_db()
    assert definition.translations == {}


def test_admin_of_other_institution_cannot_open_or_change_a_features_translations(client, api_client, tenants):
    a, b = tenants
    definition = feature(a, "units_approved")
    client.force_login(b.admin)
    assert client.get(reverse("feature-edit", args=["beta", definition.pk])).status_code == 404
    assert client.post(reverse("feature-edit", args=["beta", definition.pk]),
                       {"label": "Units approved", "label_es": "Robado"}).status_code == 404
    api_client.force_authenticate(b.admin)
    for slug in ("beta", "alpha"):
        response = api_client.patch(reverse("api-feature-detail", args=[slug, definition.pk]),
                                    {"translations": {"es": {"label": "Robado"}}}, format="json")
        assert response.status_code == 404
        assert api_client.get(reverse("api-feature-detail", args=[slug, definition.pk])).status_code == 404
    definition.refresh_from_db()
    assert definition.translations == {}
    assert not FeatureDefinitionChange.objects.for_institution(a.institution).filter(feature=definition).exists()


def test_the_api_reads_and_writes_translations_per_language_and_records_each_change(api_client, tenants):
    a, b = tenants
    definition = feature(a, "units_approved")
    url = reverse("api-feature-detail", args=["alpha", definition.pk])
    api_client.force_authenticate(a.admin)
    body = api_client.get(url).json()
    assert body["translations"] == {"es": {"label": "", "description": ""}, "pt": {"label": "", "description": ""}}
    response = api_client.patch(url, {"translations": {"es": {"label": "Asignaturas aprobadas"}}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["translations"]["es"] == {"label": "Asignaturas aprobadas", "description": ""}
    # A second update changes only what it gives.
    api_client.patch(url, {"translations": {"pt": {"description": "Aprovadas no semestre"}}}, format="json")
    definition.refresh_from_db()
    assert definition.translations == {"es": {"label": "Asignaturas aprobadas"},
                                       "pt": {"description": "Aprovadas no semestre"}}
    changes = [c.changes for c in FeatureDefinitionChange.objects.for_institution(a.institution).filter(
        feature=definition, source=ChangeSource.API)]
    assert changes == [{"description_pt": ["", "Aprovadas no semestre"]}, {"label_es": ["", "Asignaturas aprobadas"]}]
    for bad in ({"fr": {"label": "Unités"}}, {"es": {"title": "x"}}, {"es": {"label": 5}}, ["es"],
                {"es": {"label": "x" * 201}}):
        refused = api_client.patch(url, {"translations": bad}, format="json")
        assert refused.status_code == 400, bad
    definition.refresh_from_db()
    assert definition.translations == {"es": {"label": "Asignaturas aprobadas"},
                                       "pt": {"description": "Aprovadas no semestre"}}
    created = api_client.post(reverse("api-feature-list", args=["alpha"]), {
        "key": "credits", "label": "Credits", "kind": "numeric",
        "translations": {"es": {"label": "Créditos"}, "pt": {"label": "Créditos"}}}, format="json")
    assert created.status_code == 201, created.content
    assert FeatureDefinition.objects.for_institution(a.institution).get(key="credits").translations == {
        "es": {"label": "Créditos"}, "pt": {"label": "Créditos"}}
    # B's schema lists none of A's translations.
    api_client.force_authenticate(b.admin)
    listed = api_client.get(reverse("api-feature-list", args=["beta"])).json()
    assert all(item["translations"]["es"]["label"] == "" for item in listed)


def test_readers_see_the_label_of_their_language_else_the_default(client, tenants):
    a, b = tenants
    for tenant, language in ((a, "es"), (b, "pt")):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])
    FeatureDefinition.objects.for_institution(a.institution).filter(key="units_approved").update(
        translations={"es": {"label": "Asignaturas aprobadas", "description": "Aprobadas en el año"}})
    FeatureDefinition.objects.for_institution(b.institution).filter(key="tuition_up_to_date").update(
        translations={"pt": {"label": "Propinas em dia"}})
    for tenant in (a, b):
        record_run(tenant.institution, {tenant.students[0]: 0.8})  # factors about units and tuition
    client.force_login(a.advisor)
    page = client.get(reverse("student-detail", args=["alpha", a.students[0].pk])).content.decode()
    assert 'for="wi-units_approved">Asignaturas aprobadas' in page  # the what-if form
    assert "Aprobadas en el año" in page  # the data table's description
    assert "Asignaturas aprobadas: 2 — aumenta el riesgo" in page  # the factor sentence
    assert "Tuition up to date: sí — reduce el riesgo" in page  # no Spanish label given: the default
    client.force_login(b.advisor)
    page = client.get(reverse("student-detail", args=["beta", b.students[0].pk])).content.decode()
    assert "Propinas em dia: sim — reduz o risco" in page
    assert "Asignaturas aprobadas" not in page and "Units approved: 2 — aumenta o risco" in page


def test_the_demo_gives_every_uci_feature_a_spanish_and_a_portuguese_label():
    for column in UCI_COLUMNS:
        labels = uci_translations(column.key)
        assert set(labels) == {"es", "pt"}, column.key
        assert labels["es"]["label"] and labels["pt"]["label"] and labels["es"]["label"] != column.label
    assert uci_translations("tuition_up_to_date") == {"es": {"label": "Matrícula al día"},
                                                      "pt": {"label": "Propinas em dia"}}
