"""The schema page and API: administrators edit features through a review, changes are recorded,
retired features leave training, a new range refuses values at import, and an import's new numeric
feature is offered with the range seen in the file. Two institutions throughout."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.scoping import institution_scope
from students import services
from students.importing import import_file, import_preview
from students.models import ChangeSource, FeatureDefinition, FeatureDefinitionChange, Student

from .import_helpers import database_state, write_file

pytestmark = pytest.mark.django_db


def feature(tenant, key) -> FeatureDefinition:
    return FeatureDefinition.objects.for_institution(tenant.institution).get(key=key)


def edit_url(tenant, definition) -> str:
    return reverse("feature-edit", args=[tenant.institution.slug, definition.pk])


def posted(form, **overrides) -> dict:
    """What a browser posts for the form as shown, with some fields changed."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not False}


def review_and_save(client, url, **overrides):
    """Post the edit (the review comes back), then post it again from the review: saved."""
    form = client.get(url).context["form"]
    data = posted(form, **overrides)
    review = client.post(url, data)
    assert review.status_code == 200 and review.context["preview"] is not None
    return review, client.post(url, {**data, "review": review.context["review_token"]})


# --- who may open the page --------------------------------------------------------------------

@pytest.mark.parametrize("role,status", [("admin", 200), ("advisor", 403), ("viewer", 403)])
def test_only_administrators_open_the_schema_page_and_a_feature_edit(client, tenant_a, role, status):
    client.force_login(getattr(tenant_a, role))
    assert client.get(reverse("feature-schema", args=["alpha"])).status_code == status
    assert client.get(edit_url(tenant_a, tenant_a.features[0])).status_code == status
    response = client.post(edit_url(tenant_a, tenant_a.features[0]), {"label": "Changed"})
    assert response.status_code == status if status == 403 else response.status_code in (200, 400)
    if status == 403:
        assert feature(tenant_a, "units_approved").label == "Units approved"


def test_admin_of_other_institution_gets_404_on_schema_page_and_each_feature_edit(client, tenants):
    a, b = tenants
    client.force_login(b.admin)
    assert client.get(reverse("feature-schema", args=["alpha"])).status_code == 404
    for definition in a.features:
        assert client.get(edit_url(a, definition)).status_code == 404
        assert client.post(edit_url(a, definition), {"label": "Hijacked"}).status_code == 404
    # B's admin on B's page with one of A's feature ids: the id is resolved inside B, so 404.
    assert client.get(reverse("feature-edit", args=["beta", a.features[0].pk])).status_code == 404
    assert client.post(reverse("feature-edit", args=["beta", a.features[0].pk]),
                       {"label": "Hijacked"}).status_code == 404
    assert sorted(FeatureDefinition.objects.for_institution(a.institution).values_list("label", flat=True)) == \
        ["Gender", "Tuition up to date", "Units approved"]
    assert not FeatureDefinitionChange.objects.for_institution(a.institution).exists()


def test_schema_page_lists_only_this_institutions_features_and_history(client, tenants):
    a, b = tenants
    services.feature_definition_edit(institution=b.institution, definition=feature(b, "units_approved"),
                                     data={"label": "Beta-only label"}, actor=b.admin)
    client.force_login(a.admin)
    page = client.get(reverse("feature-schema", args=["alpha"]))
    assert {f.pk for f in page.context["features"]} == {f.pk for f in a.features}
    assert page.context["changes"] == []
    assert "Beta-only label" not in page.content.decode()
    assert "apply at the next retrain" in page.content.decode()


# --- editing through a review ------------------------------------------------------------------

def test_admin_edits_label_unit_description_and_flags_after_a_review_and_the_change_is_recorded(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    definition = feature(a, "units_approved")
    url = edit_url(a, definition)
    form = client.get(url).context["form"]
    data = posted(form, label="Approved units", unit="units", description="First semester", protected="on")
    data.pop("actionable")
    before_b = database_state(b.institution)

    review = client.post(url, data)

    assert review.status_code == 200
    assert review.context["preview"].changes == {
        "label": ["Units approved", "Approved units"], "description": ["", "First semester"],
        "unit": ["", "units"], "protected": [False, True], "actionable": [True, False],
    }
    assert "apply to the model at the next retrain" in review.content.decode()
    assert feature(a, "units_approved").label == "Units approved"  # the review saved nothing
    assert not FeatureDefinitionChange.objects.for_institution(a.institution).exists()

    saved = client.post(url, {**data, "review": review.context["review_token"]})

    assert saved.status_code == 302
    definition.refresh_from_db()
    assert (definition.label, definition.unit, definition.description, definition.protected,
            definition.actionable) == ("Approved units", "units", "First semester", True, False)
    change = FeatureDefinitionChange.objects.for_institution(a.institution).get()
    assert change.actor == a.admin and change.source == ChangeSource.WEB and change.feature == definition
    assert change.changes["label"] == ["Units approved", "Approved units"]
    page = client.get(reverse("feature-schema", args=["alpha"]))
    assert "Units approved → Approved units" in page.content.decode()
    assert database_state(b.institution) == before_b


def test_a_save_that_differs_from_the_review_shown_is_reviewed_again(client, tenant_a):
    client.force_login(tenant_a.admin)
    url = edit_url(tenant_a, tenant_a.features[0])
    form = client.get(url).context["form"]
    review = client.post(url, posted(form, label="First"))
    again = client.post(url, {**posted(form, label="Second"), "review": review.context["review_token"]})
    assert again.status_code == 200 and again.context["preview"].changes["label"] == ["Units approved", "Second"]
    assert feature(tenant_a, "units_approved").label == "Units approved"


def test_a_narrower_range_shows_how_many_stored_values_fall_outside_before_saving_and_keeps_them(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    definition = feature(a, "units_approved")  # A's students hold 1..6
    review = client.post(edit_url(a, definition), posted(client.get(edit_url(a, definition)).context["form"],
                                                         min_value="0", max_value="3"))
    assert review.context["preview"].stored_values_outside == 3
    assert "3 stored values fall outside the new rules" in review.content.decode()
    FeatureDefinition.objects.for_institution(b.institution).filter(key="units_approved").update(max_value=30)

    client.post(edit_url(a, definition), {**posted(review.context["form"]), "review": review.context["review_token"]})

    definition.refresh_from_db()
    assert (definition.min_value, definition.max_value) == (0, 3)
    values = sorted(s.features["units_approved"] for s in Student.objects.for_institution(a.institution))
    assert values == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # nothing deleted
    profile = client.get(reverse("student-detail", args=["alpha", a.students[5].pk]))
    assert "Outside the valid range" in profile.content.decode()


def test_narrower_categories_count_the_stored_values_they_refuse(tenant_a):
    definition = feature(tenant_a, "gender")  # every A student holds "f"
    preview = services.feature_definition_edit_preview(
        institution=tenant_a.institution, definition=definition, data={"categories": [{"value": "m", "label": "M"}]})
    assert preview.stored_values_outside == 6
    assert preview.changes["categories"][1] == [{"value": "m", "label": "M"}]


def test_invalid_edits_are_refused_with_a_reason_and_change_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    definition = feature(tenant_a, "units_approved")
    url = edit_url(tenant_a, definition)
    form = client.get(url).context["form"]
    response = client.post(url, posted(form, min_value="10", max_value="5"))
    assert response.status_code == 400
    assert "must not be greater than the maximum" in str(response.context["form"].errors)
    response = client.post(url, posted(form, label="  "))
    assert response.status_code == 400
    for hostile in ("1e400", "abc", "nan"):
        assert client.post(url, posted(form, max_value=hostile)).status_code == 400
    gender_url = edit_url(tenant_a, feature(tenant_a, "gender"))
    gender_form = client.get(gender_url).context["form"]
    response = client.post(gender_url, posted(gender_form, categories="f = Female\nf = Again"))
    assert response.status_code == 400 and "only once" in str(response.context["form"].errors)
    assert not FeatureDefinitionChange.objects.for_institution(tenant_a.institution).exists()
    definition.refresh_from_db()
    assert (definition.min_value, definition.max_value, definition.label) == (0, 30, "Units approved")


# --- retiring -----------------------------------------------------------------------------------

def test_retiring_and_restoring_a_feature_is_recorded_and_the_values_stay(client, tenant_a):
    client.force_login(tenant_a.admin)
    definition = feature(tenant_a, "tuition_up_to_date")
    review, saved = review_and_save(client, edit_url(tenant_a, definition), retired="on")
    assert review.context["preview"].applies_at_retrain == ["retired"]
    assert saved.status_code == 302
    definition.refresh_from_db()
    assert definition.is_retired
    assert all("tuition_up_to_date" in s.features for s in Student.objects.for_institution(tenant_a.institution))
    profile = client.get(reverse("student-detail", args=["alpha", tenant_a.students[0].pk]))
    row = next(r for r in profile.context["feature_rows"] if r["definition"].key == "tuition_up_to_date")
    assert row["value"] is True and row["definition"].is_retired  # still on the record
    assert 'title="No longer a model input; the value is kept">retired</span>' in profile.content.decode()

    form = client.get(edit_url(tenant_a, definition)).context["form"]
    data = posted(form)
    data.pop("retired")
    review = client.post(edit_url(tenant_a, definition), data)
    client.post(edit_url(tenant_a, definition), {**data, "review": review.context["review_token"]})
    definition.refresh_from_db()
    assert not definition.is_retired
    history = list(FeatureDefinitionChange.objects.for_institution(tenant_a.institution)
                   .order_by("changed_at", "id").values_list("changes", flat=True))
    assert history == [{"retired": [False, True]}, {"retired": [True, False]}]


def test_a_retired_feature_is_not_an_input_of_the_next_trained_model(tenants):
    from predictions.frames import feature_specs
    from predictions.services.training import model_version_train
    from tests.predictions.conftest import add_population, fast_settings

    a, b = tenants
    add_population(a.institution)
    fast_settings(a.institution)
    services.feature_definition_edit(institution=a.institution, definition=feature(a, "tuition_up_to_date"),
                                     data={"retired": True}, actor=a.admin)
    assert "tuition_up_to_date" not in [spec.key for spec in feature_specs(institution=a.institution)]
    assert "tuition_up_to_date" in [spec.key for spec in feature_specs(institution=b.institution)]

    with institution_scope(a.institution):
        version = model_version_train(institution=a.institution)

    assert "units_approved" in version.feature_keys
    assert "tuition_up_to_date" not in version.feature_keys


# --- the range an import saw --------------------------------------------------------------------

def test_a_numeric_feature_created_by_an_import_is_offered_with_the_range_seen_in_the_file(client, tenants, tmp_path):
    a, b = tenants
    path = write_file(tmp_path, "credits.csv", "student_id,credits\r\nS001,0\r\nS002,37\r\nS003,12.5\r\n")
    mapping = import_preview(institution=a.institution, path=path).mapping.as_dict()
    mapping["columns"]["credits"].update(target="new_feature", kind="numeric", feature="credits")
    report = import_file(institution=a.institution, path=path, mapping=mapping, commit=True, actor=a.admin)
    assert report.committed and report.new_features == ["credits"]

    credits = feature(a, "credits")
    assert (credits.seen_min_value, credits.seen_max_value, credits.min_value, credits.max_value) == \
        (0, 37, None, None)
    assert credits.range_unconfirmed
    created = FeatureDefinitionChange.objects.for_institution(a.institution).get()
    assert (created.feature, created.actor, created.source, created.changes) == (
        credits, a.admin, ChangeSource.IMPORT, {"created": [None, "credits"], "seen_in_file": [None, "0 to 37"]})
    assert not FeatureDefinition.objects.for_institution(b.institution).filter(key="credits").exists()
    client.force_login(a.admin)
    page = client.get(reverse("feature-schema", args=["alpha"])).content.decode()
    assert "seen in file: 0–37" in page and "confirm range" in page

    form = client.get(edit_url(a, credits) + "?use_seen_range=1").context["form"]
    review = client.post(edit_url(a, credits), posted(form))
    assert review.context["preview"].changes == {"min_value": [None, 0.0], "max_value": [None, 37.0]}
    assert review.context["preview"].stored_values_outside == 0
    assert "range seen in the file: (none) → 0 to 37" in review.content.decode()  # the feature's history
    client.post(edit_url(a, credits), {**posted(form), "review": review.context["review_token"]})
    credits.refresh_from_db()
    assert (credits.min_value, credits.max_value, credits.range_unconfirmed) == (0, 37, False)
    assert credits.seen_min_value is None


def test_a_range_set_on_the_schema_page_refuses_values_at_import_with_row_and_column(tenants, tmp_path):
    a, b = tenants
    services.feature_definition_edit(institution=a.institution, definition=feature(a, "units_approved"),
                                     data={"min_value": 0.0, "max_value": 10.0}, actor=a.admin)
    path = write_file(tmp_path, "units.csv", "student_id,units_approved\r\nS001,4\r\nS002,12\r\nS003,-4\r\n")
    before = database_state(a.institution, b.institution)

    report = import_file(institution=a.institution, path=path,
                         mapping=import_preview(institution=a.institution, path=path).mapping, commit=True)

    assert not report.committed and report.error_count == 2
    assert [(e.row, e.column, e.value) for e in report.errors] == [(3, "units_approved", "12"),
                                                                   (4, "units_approved", "-4")]
    assert "12 is outside the valid range 0 to 10" in report.errors[0].reason
    assert "-4 is outside the valid range 0 to 10" in report.errors[1].reason
    assert database_state(a.institution, b.institution) == before
    # B's schema is its own (0 to 30): there 12 is valid and only -4 is refused.
    report_b = import_file(institution=b.institution, path=path,
                           mapping=import_preview(institution=b.institution, path=path).mapping, commit=False)
    assert [(e.row, e.column, e.value) for e in report_b.errors] == [(4, "units_approved", "-4")]


# --- the API ------------------------------------------------------------------------------------

def test_api_edits_and_retires_a_feature_with_the_same_rules_and_records_the_change(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    url = reverse("api-feature-detail", args=["alpha", feature(a, "units_approved").pk])

    response = api_client.patch(url, {"max_value": 3, "label": "Units"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["stored_values_outside"] == 3 and response.json()["label"] == "Units"
    response = api_client.patch(url, {"retired": True}, format="json")
    assert response.status_code == 200 and response.json()["retired"] is True
    assert response.json()["retired_at"] is not None

    refused = api_client.patch(url, {"min_value": 5}, format="json")  # above max_value 3
    assert refused.status_code == 400 and "must not be greater than the maximum" in refused.content.decode()
    assert api_client.patch(url, {"kind": "boolean"}, format="json").status_code == 400
    assert api_client.patch(url, {"key": "renamed"}, format="json").status_code == 400
    changes = list(FeatureDefinitionChange.objects.for_institution(a.institution).order_by("id")
                   .values_list("source", "actor", "changes"))
    assert changes == [
        (ChangeSource.API, a.admin.pk, {"label": ["Units approved", "Units"], "max_value": [30.0, 3.0]}),
        (ChangeSource.API, a.admin.pk, {"retired": [False, True]}),
    ]
    definition = feature(a, "units_approved")
    assert (definition.min_value, definition.max_value, definition.is_retired) == (0, 3, True)
    other = feature(b, "units_approved")
    assert (other.label, other.max_value, other.is_retired) == ("Units approved", 30, False)
    assert not FeatureDefinitionChange.objects.for_institution(b.institution).exists()


def test_api_cannot_edit_another_institutions_feature(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(b.admin)
    for definition in a.features:
        assert api_client.patch(reverse("api-feature-detail", args=["beta", definition.pk]),
                                {"label": "x"}, format="json").status_code == 404
        assert api_client.patch(reverse("api-feature-detail", args=["alpha", definition.pk]),
                                {"label": "x"}, format="json").status_code == 404
    assert not FeatureDefinitionChange.objects.for_institution(a.institution).exists()


def test_advisor_cannot_edit_the_schema_through_the_api(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.advisor)
    url = reverse("api-feature-detail", args=["alpha", tenant_a.features[0].pk])
    assert api_client.patch(url, {"retired": True}, format="json").status_code == 403
    assert not feature(tenant_a, "units_approved").is_retired


def test_api_student_write_refuses_a_value_outside_the_range_set_on_the_schema_page(api_client, tenants):
    a, b = tenants
    services.feature_definition_edit(institution=a.institution, definition=feature(a, "units_approved"),
                                     data={"max_value": 10.0}, actor=a.admin)
    api_client.force_authenticate(a.admin)
    response = api_client.patch(reverse("api-student-detail", args=["alpha", a.students[0].pk]),
                                {"features": {"units_approved": 12}}, format="json")
    assert response.status_code == 400
    assert "12 is outside the valid range 0 to 10" in response.json()["errors"]["features"]["units_approved"]
    assert Student.objects.for_institution(a.institution).get(pk=a.students[0].pk).features["units_approved"] == 1.0
    api_client.force_authenticate(b.admin)
    assert api_client.patch(reverse("api-student-detail", args=["beta", b.students[0].pk]),
                            {"features": {"units_approved": 12}}, format="json").status_code == 200


def test_api_creates_a_feature_and_its_creation_is_in_the_schema_history(api_client, client, tenants):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    response = api_client.post(reverse("api-feature-list", args=["alpha"]),
                               {"key": "age", "label": "Age", "kind": "numeric", "min_value": 16, "max_value": 90,
                                "protected": True, "retired": True}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["retired"] is True and response.json()["stored_values_outside"] is None
    change = FeatureDefinitionChange.objects.for_institution(a.institution).get()
    assert (change.feature.key, change.actor, change.source, change.changes) == \
        ("age", a.admin, ChangeSource.API, {"created": [None, "age"]})
    assert not FeatureDefinitionChange.objects.for_institution(b.institution).exists()
    client.force_login(a.admin)
    assert "created with key" in client.get(reverse("feature-schema", args=["alpha"])).content.decode()


@pytest.mark.parametrize("body", [
    '{"max_value": 1e400}', '{"min_value": -1e999}', '{"max_value": "abc"}', '{"max_value": NaN}',
    '{"categories": "f"}', '{"label": ""}', '{"retired": "perhaps"}',
])
def test_api_refuses_a_hostile_feature_edit_with_a_400_and_changes_nothing(api_client, tenant_a, body):
    api_client.force_authenticate(tenant_a.admin)
    url = reverse("api-feature-detail", args=["alpha", feature(tenant_a, "units_approved").pk])
    response = api_client.patch(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    definition = feature(tenant_a, "units_approved")
    assert (definition.label, definition.min_value, definition.max_value, definition.is_retired) == \
        ("Units approved", 0, 30, False)
    assert not FeatureDefinitionChange.objects.for_institution(tenant_a.institution).exists()


def test_api_refuses_a_feature_created_with_an_infinite_range(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(reverse("api-feature-list", args=["alpha"]),
                               '{"key": "age", "label": "Age", "kind": "numeric", "max_value": 1e400}',
                               content_type="application/json")
    assert response.status_code == 400, response.content
    assert not FeatureDefinition.objects.for_institution(tenant_a.institution).filter(key="age").exists()
