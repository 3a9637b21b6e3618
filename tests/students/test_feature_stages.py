"""Stages of a student's path: each institution's ordered list (defaults, added, renamed, moved,
removed through a review and recorded), each feature's "known from" stage on the schema pages and
in the API (recorded like every other field), and which features a stage's model may read. Two
institutions throughout."""

from __future__ import annotations

import pytest
from django.urls import reverse

from students import services
from students.models import ChangeSource, FeatureDefinition, FeatureDefinitionChange, FeatureStage, FeatureStageChange
from students.stages import (
    DEFAULT_STAGES,
    feature_keys_known_at,
    feature_stage_edit,
    feature_stage_list,
)
from students.uci_schema import UCI_COLUMNS

from .test_feature_schema import edit_url, feature, posted

pytestmark = pytest.mark.django_db


def stage_keys(tenant) -> list[str]:
    return [stage.key for stage in feature_stage_list(institution=tenant.institution)]


def stages_url(slug: str) -> str:
    return reverse("feature-stages", args=[slug])


def review_and_save_stage(client, slug, **fields):
    """Post a stage edit (the review comes back), then post it again from the review: saved."""
    review = client.post(stages_url(slug), fields)
    assert review.status_code == 200, review.content.decode()[:500]
    assert review.context["preview"] is not None
    return review, client.post(stages_url(slug), {**fields, "review": review.context["review_token"]})


# --- stages as data ------------------------------------------------------------------------------

def test_every_institution_starts_with_application_enrolment_and_two_terms_and_features_known_from_the_first(
        tenants):
    a, b = tenants
    assert stage_keys(a) == stage_keys(b) == [key for key, _label in DEFAULT_STAGES]
    assert stage_keys(a) == ["application", "enrolment", "end_of_term_1", "end_of_term_2"]
    stages_a = feature_stage_list(institution=a.institution)
    assert {stage.institution_id for stage in stages_a} == {a.institution.pk}
    # An institution that never sets stages keeps one model using every feature.
    for stage in stages_a:
        assert feature_keys_known_at(stage=stage, stages=stages_a, definitions=a.features) == \
            ["units_approved", "tuition_up_to_date", "gender"]


def test_a_stage_model_reads_only_the_features_known_at_or_before_it(tenant_a):
    services.feature_definition_edit(institution=tenant_a.institution, definition=feature(tenant_a, "units_approved"),
                                     data={"known_from": "end_of_term_1"}, actor=tenant_a.admin)
    services.feature_definition_edit(institution=tenant_a.institution,
                                     definition=feature(tenant_a, "tuition_up_to_date"),
                                     data={"known_from": "enrolment"}, actor=tenant_a.admin)
    stages = feature_stage_list(institution=tenant_a.institution)
    definitions = list(FeatureDefinition.objects.for_institution(tenant_a.institution).order_by("position", "key"))
    known = {stage.key: feature_keys_known_at(stage=stage, stages=stages, definitions=definitions)
             for stage in stages}
    assert known == {
        "application": ["gender"],
        "enrolment": ["gender", "tuition_up_to_date"],
        "end_of_term_1": ["gender", "tuition_up_to_date", "units_approved"],
        "end_of_term_2": ["gender", "tuition_up_to_date", "units_approved"],
    }


def test_the_uci_schema_knows_semester_results_only_at_the_end_of_each_term():
    known = {column.key: column.known_from for column in UCI_COLUMNS}
    assert set(known.values()) <= {key for key, _label in DEFAULT_STAGES}
    for suffix in ("evaluations", "approved", "grade", "without_evaluations"):
        assert known[f"units_1st_{suffix}"] == "end_of_term_1"
        assert known[f"units_2nd_{suffix}"] == "end_of_term_2"
    assert known["units_1st_enrolled"] == "enrolment" and known["units_2nd_enrolled"] == "end_of_term_1"
    assert known["tuition_up_to_date"] == known["scholarship_holder"] == "enrolment"
    assert known["admission_grade"] == known["course"] == known["age_at_enrolment"] == "application"


# --- the feature's stage on the schema pages --------------------------------------------------------

def test_admin_sets_the_stage_a_feature_is_known_from_after_a_review_and_the_change_is_recorded(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    definition = feature(a, "units_approved")
    url = edit_url(a, definition)
    form = client.get(url).context["form"]
    assert form["known_from"].value() == "application"
    assert [choice[0] for choice in form.fields["known_from"].choices] == stage_keys(a)
    data = posted(form, known_from="end_of_term_1")

    review = client.post(url, data)
    assert review.context["preview"].changes == {"known_from": ["application", "end_of_term_1"]}
    assert "apply to the model at the next retrain" in review.content.decode()
    assert feature(a, "units_approved").known_from_id is None  # the review saved nothing

    saved = client.post(url, {**data, "review": review.context["review_token"]})
    assert saved.status_code == 302
    assert feature(a, "units_approved").known_from.key == "end_of_term_1"
    change = FeatureDefinitionChange.objects.for_institution(a.institution).get()
    assert (change.actor, change.source, change.changes) == \
        (a.admin, ChangeSource.WEB, {"known_from": ["application", "end_of_term_1"]})
    assert feature(b, "units_approved").known_from_id is None

    listing = client.get(reverse("feature-schema", args=["alpha"]))
    shown = {f.key: f.stage.label for f in listing.context["features"]}
    assert shown == {"units_approved": "End of term 1", "tuition_up_to_date": "Application", "gender": "Application"}
    assert "End of term 1" in listing.content.decode() and "known from" in listing.content.decode()
    client.force_login(a.viewer)
    read_only = client.get(reverse("feature-list", args=["alpha"]))
    assert {f.key: f.stage.key for f in read_only.context["features"]}["units_approved"] == "end_of_term_1"


def test_a_stage_another_institution_added_cannot_be_chosen_for_a_feature(client, tenants):
    a, b = tenants
    feature_stage_edit(institution=b.institution, action="add", key="summer_school", label="Summer school",
                       actor=b.admin)
    client.force_login(a.admin)
    url = edit_url(a, feature(a, "units_approved"))
    response = client.post(url, posted(client.get(url).context["form"], known_from="summer_school"))
    assert response.status_code == 400
    assert "known_from" in response.context["form"].errors
    with pytest.raises(services.FeatureDefinitionInvalid) as refused:
        services.feature_definition_edit(institution=a.institution, definition=feature(a, "units_approved"),
                                         data={"known_from": "summer_school"}, actor=a.admin)
    assert refused.value.errors == {"known_from": ["this institution has no stage with this key"]}
    assert feature(a, "units_approved").known_from_id is None
    assert not FeatureDefinitionChange.objects.for_institution(a.institution).exists()


# --- the stages page --------------------------------------------------------------------------------

@pytest.mark.parametrize("role,status", [("admin", 200), ("advisor", 403), ("viewer", 403)])
def test_only_administrators_open_and_change_the_stages(client, tenant_a, role, status):
    client.force_login(getattr(tenant_a, role))
    assert client.get(stages_url("alpha")).status_code == status
    response = client.post(stages_url("alpha"), {"action": "rename", "stage_key": "enrolment", "label": "Sign-up"})
    assert response.status_code == status
    assert feature_stage_list(institution=tenant_a.institution)[1].label == "Enrolment"


def test_admin_of_other_institution_gets_404_on_the_stages_page_and_changes_nothing(client, tenants):
    a, b = tenants
    feature_stage_edit(institution=a.institution, action="add", key="alpha_only", label="Alpha only", actor=a.admin)
    client.force_login(b.admin)
    assert client.get(stages_url("alpha")).status_code == 404
    for fields in ({"action": "rename", "stage_key": "enrolment", "label": "Hijacked"},
                   {"action": "remove", "stage_key": "alpha_only"}):
        assert client.post(stages_url("alpha"), {**fields, "review": "x"}).status_code == 404
    # A's own stage named on B's page is resolved inside B: no such stage, nothing changes anywhere.
    refused = client.post(stages_url("beta"), {"action": "remove", "stage_key": "alpha_only"})
    assert refused.status_code == 400 and "this institution has no such stage" in refused.content.decode()
    assert stage_keys(a) == [*(key for key, _ in DEFAULT_STAGES), "alpha_only"]
    assert feature_stage_list(institution=a.institution)[1].label == "Enrolment"
    page = client.get(stages_url("beta"))
    assert "Alpha only" not in page.content.decode() and page.context["changes"] == []


def test_admin_adds_renames_moves_and_removes_a_stage_each_after_a_review_and_each_is_recorded(client, tenants):
    a, b = tenants
    client.force_login(a.admin)

    review, saved = review_and_save_stage(client, "alpha", action="add", key="end_of_term_3", label="End of term 3")
    assert "as the latest stage" in review.content.decode()
    assert review.context["order_labels"][-1] == "End of term 3"
    assert saved.status_code == 302 and stage_keys(a)[-1] == "end_of_term_3"

    review, _saved = review_and_save_stage(client, "alpha", action="rename", stage_key="end_of_term_2",
                                           label="End of year 1")
    assert "Rename “End of term 2” to “End of year 1”." in review.content.decode()
    assert [s.label for s in feature_stage_list(institution=a.institution)][3] == "End of year 1"

    services.feature_definition_edit(institution=a.institution, definition=feature(a, "units_approved"),
                                     data={"known_from": "end_of_term_3"}, actor=a.admin)
    review, _saved = review_and_save_stage(client, "alpha", action="move_earlier", stage_key="end_of_term_3")
    assert "1 feature is known from this stage." in review.content.decode()
    assert stage_keys(a) == ["application", "enrolment", "end_of_term_1", "end_of_term_3", "end_of_term_2"]

    refused = client.post(stages_url("alpha"), {"action": "remove", "stage_key": "end_of_term_3"})
    assert refused.status_code == 400
    assert "1 features are known from this stage: give them another stage first" in refused.content.decode()
    _review, _saved = review_and_save_stage(client, "alpha", action="remove", stage_key="end_of_term_2")
    assert stage_keys(a) == ["application", "enrolment", "end_of_term_1", "end_of_term_3"]

    recorded = list(FeatureStageChange.objects.for_institution(a.institution).order_by("id")
                    .values_list("stage_key", "actor", "source", "changes"))
    assert [(key, actor, source) for key, actor, source, _ in recorded] == [
        ("end_of_term_3", a.admin.pk, "web"), ("end_of_term_2", a.admin.pk, "web"),
        ("end_of_term_3", a.admin.pk, "web"), ("end_of_term_2", a.admin.pk, "web"),
    ]
    assert recorded[1][3] == {"label": ["End of term 2", "End of year 1"]}
    assert recorded[2][3]["order"][1] == ["application", "enrolment", "end_of_term_1", "end_of_term_3",
                                          "end_of_term_2"]
    page = client.get(stages_url("alpha")).content.decode()
    assert "renamed from “End of term 2” to “End of year 1”" in page and "added as “End of term 3”" in page
    assert stage_keys(b) == [key for key, _ in DEFAULT_STAGES]
    assert not FeatureStageChange.objects.for_institution(b.institution).exists()


def test_a_review_saves_nothing_and_a_save_that_differs_from_the_review_is_reviewed_again(client, tenant_a):
    client.force_login(tenant_a.admin)
    review = client.post(stages_url("alpha"), {"action": "rename", "stage_key": "enrolment", "label": "Sign-up"})
    assert review.status_code == 200 and feature_stage_list(institution=tenant_a.institution)[1].label == "Enrolment"
    again = client.post(stages_url("alpha"), {"action": "rename", "stage_key": "enrolment", "label": "Other",
                                              "review": review.context["review_token"]})
    assert again.status_code == 200 and again.context["preview"].changes == {"label": ["Enrolment", "Other"]}
    assert feature_stage_list(institution=tenant_a.institution)[1].label == "Enrolment"
    assert not FeatureStageChange.objects.for_institution(tenant_a.institution).exists()


@pytest.mark.parametrize("fields,reason", [
    ({"action": "add", "key": "Bad Key!", "label": "Bad"}, "use lower-case letters, digits and underscores"),
    ({"action": "add", "key": "enrolment", "label": "Again"}, "a stage with this key already exists"),
    ({"action": "add", "key": "new_one", "label": "enrolment"}, "another stage already has this name"),
    ({"action": "rename", "stage_key": "enrolment", "label": "  "}, "must not be blank"),
    ({"action": "rename", "stage_key": "enrolment", "label": "x" * 101}, "at most 100 characters"),
    ({"action": "move_earlier", "stage_key": "application"}, "this stage is already the earliest"),
    ({"action": "move_later", "stage_key": "end_of_term_2"}, "this stage is already the latest"),
    ({"action": "remove", "stage_key": "application"}, "features are known from this stage"),
    ({"action": "rename", "stage_key": "nowhere", "label": "X"}, "this institution has no such stage"),
    ({"action": "explode"}, "unknown action"),
])
def test_bad_stage_edits_are_refused_with_a_reason_and_change_nothing(client, tenant_a, fields, reason):
    client.force_login(tenant_a.admin)
    feature_stage_list(institution=tenant_a.institution)  # the defaults, created on first use
    before = list(FeatureStage.objects.for_institution(tenant_a.institution).order_by("pk")
                  .values_list("key", "label", "position"))
    response = client.post(stages_url("alpha"), {**fields, "review": "anything"})
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert list(FeatureStage.objects.for_institution(tenant_a.institution).order_by("pk")
                .values_list("key", "label", "position")) == before
    assert not FeatureStageChange.objects.for_institution(tenant_a.institution).exists()


# --- the API ------------------------------------------------------------------------------------------

def test_api_lists_the_institutions_own_stages_and_each_features_stage(api_client, tenants):
    a, b = tenants
    feature_stage_edit(institution=b.institution, action="add", key="beta_only", label="Beta only", actor=b.admin)
    api_client.force_authenticate(a.viewer)
    stages = api_client.get(reverse("api-stage-list", args=["alpha"]))
    assert stages.status_code == 200
    assert [row["key"] for row in stages.json()] == [key for key, _ in DEFAULT_STAGES]
    features = api_client.get(reverse("api-feature-list", args=["alpha"])).json()
    assert {row["key"]: row["known_from"] for row in features} == {
        "units_approved": "application", "tuition_up_to_date": "application", "gender": "application"}
    assert api_client.get(reverse("api-stage-list", args=["beta"])).status_code == 404


def test_api_sets_a_features_stage_with_the_same_rules_and_records_the_change(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    url = reverse("api-feature-detail", args=["alpha", feature(a, "units_approved").pk])
    response = api_client.patch(url, {"known_from": "end_of_term_2"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["known_from"] == "end_of_term_2"
    refused = api_client.patch(url, {"known_from": "never"}, format="json")
    assert refused.status_code == 400 and "no stage with this key" in refused.content.decode()
    change = FeatureDefinitionChange.objects.for_institution(a.institution).get()
    assert (change.source, change.changes) == (ChangeSource.API, {"known_from": ["application", "end_of_term_2"]})

    created = api_client.post(reverse("api-feature-list", args=["alpha"]),
                              {"key": "grade_term_1", "label": "Grade", "kind": "numeric",
                               "known_from": "end_of_term_1"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["known_from"] == "end_of_term_1"
    assert feature(a, "grade_term_1").known_from.key == "end_of_term_1"
    unknown = api_client.post(reverse("api-feature-list", args=["alpha"]),
                              {"key": "other", "label": "Other", "kind": "numeric", "known_from": "nope"},
                              format="json")
    assert unknown.status_code == 400 and not FeatureDefinition.objects.for_institution(a.institution).filter(
        key="other").exists()
    assert feature(b, "units_approved").known_from_id is None


def test_api_cannot_set_a_stage_on_another_institutions_feature(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(b.admin)
    for slug in ("alpha", "beta"):
        response = api_client.patch(reverse("api-feature-detail", args=[slug, feature(a, "units_approved").pk]),
                                    {"known_from": "enrolment"}, format="json")
        assert response.status_code == 404
    assert feature(a, "units_approved").known_from_id is None
