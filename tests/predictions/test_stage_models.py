"""One model per stage: a retrain trains every stage in use on the features known by then, each
stage keeps its own live model and gate, and the model pages and API say which stage a version is
for. Two institutions throughout."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from institutions.jobs import job_create
from institutions.models import JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions.models import ModelStatus, ModelVersion
from predictions.selectors import model_version_live
from predictions.services.jobs import retrain_job_run
from predictions.services.promotion import model_version_promote
from students import services
from students.models import FeatureDefinition
from students.stages import feature_stage_list, feature_stages_in_use

from .conftest import add_population, fast_settings, registry_row

pytestmark = pytest.mark.django_db


def stage(tenant, key):
    return next(item for item in feature_stage_list(institution=tenant.institution) if item.key == key)


def staged(tenant):
    """Tuition known at enrolment, approved units only at the end of term 1 (gender: application)."""
    for key, known_from in (("tuition_up_to_date", "enrolment"), ("units_approved", "end_of_term_1")):
        definition = FeatureDefinition.objects.for_institution(tenant.institution).get(key=key)
        services.feature_definition_edit(institution=tenant.institution, definition=definition,
                                         data={"known_from": known_from}, actor=tenant.admin)


def retrain(tenant, **params):
    job, _ = job_create(institution=tenant.institution, kind=JobKind.RETRAIN, params=params)
    with institution_scope(tenant.institution):
        version = retrain_job_run(institution=tenant.institution, job=job)
    job.refresh_from_db()
    return job, version


@pytest.fixture
def staged_a(tenant_a):
    add_population(tenant_a.institution)
    fast_settings(tenant_a.institution)
    staged(tenant_a)
    return tenant_a


def test_a_retrain_trains_one_model_per_stage_in_use_on_what_is_known_by_then(staged_a, tenant_b):
    # Gender is protected (no model input), so the application stage has no model to train.
    assert [s.key for s in feature_stages_in_use(institution=staged_a.institution)] == ["enrolment", "end_of_term_1"]

    job, version = retrain(staged_a)

    assert job.status == JobStatus.SUCCEEDED
    versions = {v.stage.key: v for v in ModelVersion.objects.for_institution(staged_a.institution)}
    assert set(versions) == {"enrolment", "end_of_term_1"}
    assert versions["enrolment"].feature_keys == ["tuition_up_to_date"]
    assert sorted(versions["end_of_term_1"].feature_keys) == ["tuition_up_to_date", "units_approved"]
    assert versions["enrolment"].model_card["stage"]["key"] == "enrolment"
    # Both passed their gate on their own and went live: one live model per stage.
    assert {key: v.status for key, v in versions.items()} == {"enrolment": "live", "end_of_term_1": "live"}
    assert version == versions["end_of_term_1"]
    assert [row["stage"] for row in job.result["stages"]] == ["enrolment", "end_of_term_1"]
    # Until scoring picks a stage per student, the latest stage's live model scores them.
    assert model_version_live(institution=staged_a.institution) == versions["end_of_term_1"]
    assert model_version_live(institution=staged_a.institution, stage=stage(staged_a, "enrolment")) == \
        versions["enrolment"]
    assert not ModelVersion.objects.for_institution(tenant_b.institution).exists()


def test_an_institution_that_never_set_stages_keeps_one_model_using_every_feature(tenant_a):
    add_population(tenant_a.institution)
    fast_settings(tenant_a.institution)
    job, version = retrain(tenant_a)
    assert job.status == JobStatus.SUCCEEDED
    assert ModelVersion.objects.for_institution(tenant_a.institution).count() == 1
    assert version.stage.key == "application"
    assert sorted(version.feature_keys) == ["tuition_up_to_date", "units_approved"]


def test_a_retrain_can_train_the_one_stage_asked_and_refuses_a_stage_the_institution_lacks(staged_a):
    job, version = retrain(staged_a, stage="enrolment")
    assert job.status == JobStatus.SUCCEEDED and version.stage.key == "enrolment"
    assert ModelVersion.objects.for_institution(staged_a.institution).count() == 1
    job, version = retrain(staged_a, stage="summer_school")
    assert version is None and job.status == JobStatus.FAILED and "no stage 'summer_school'" in job.error
    assert ModelVersion.objects.for_institution(staged_a.institution).count() == 1


def test_the_gate_compares_a_candidate_with_the_live_model_of_its_own_stage(staged_a):
    retrain(staged_a)
    live = {v.stage.key: v for v in ModelVersion.objects.for_institution(staged_a.institution)}
    _job, _latest = retrain(staged_a, stage="enrolment")
    candidate = ModelVersion.objects.for_institution(staged_a.institution).order_by("-number").first()
    assert candidate.stage.key == "enrolment"
    assert candidate.gate["comparison"]["live_version"] == live["enrolment"].number
    # Promoting it retired the enrolment model only; the end-of-term-1 model stays live.
    statuses = dict(ModelVersion.objects.for_institution(staged_a.institution).values_list("number", "status"))
    assert statuses[live["end_of_term_1"].number] == ModelStatus.LIVE
    assert statuses[live["enrolment"].number] == (ModelStatus.RETIRED if candidate.status == ModelStatus.LIVE
                                                   else ModelStatus.LIVE)


def test_promoting_a_version_retires_only_the_live_model_of_its_stage(tenant_a):
    enrolment, term = stage(tenant_a, "enrolment"), stage(tenant_a, "end_of_term_1")
    registry_row(tenant_a.institution, number=1, status=ModelStatus.LIVE, stage=enrolment)
    registry_row(tenant_a.institution, number=2, status=ModelStatus.LIVE, stage=term)
    candidate = registry_row(tenant_a.institution, number=3, stage=enrolment)
    with institution_scope(tenant_a.institution):
        model_version_promote(institution=tenant_a.institution, version=candidate, user=tenant_a.admin,
                              rescore=False)
    statuses = dict(ModelVersion.objects.for_institution(tenant_a.institution).values_list("number", "status"))
    assert statuses == {1: ModelStatus.RETIRED, 2: ModelStatus.LIVE, 3: ModelStatus.LIVE}


def test_the_database_allows_one_live_version_per_stage_of_each_institution(tenants):
    a, b = tenants
    registry_row(a.institution, number=1, status=ModelStatus.LIVE, stage=stage(a, "enrolment"))
    registry_row(a.institution, number=2, status=ModelStatus.LIVE, stage=stage(a, "end_of_term_1"))
    registry_row(b.institution, number=1, status=ModelStatus.LIVE, stage=stage(b, "enrolment"))
    with pytest.raises(IntegrityError), transaction.atomic():
        registry_row(a.institution, number=3, status=ModelStatus.LIVE, stage=stage(a, "enrolment"))


def test_a_stage_with_models_cannot_be_removed(client, tenant_a):
    from students.stages import feature_stage_edit

    registry_row(tenant_a.institution, number=1, stage=stage(tenant_a, "end_of_term_2"))
    client.force_login(tenant_a.admin)
    fields = {"action": "remove", "stage_key": "end_of_term_2"}
    review = client.post(reverse("feature-stages", args=["alpha"]), fields)
    saved = client.post(reverse("feature-stages", args=["alpha"]), {**fields, "review": review.context["review_token"]})
    assert saved.status_code == 400 and "models were trained for this stage" in saved.content.decode()
    assert "end_of_term_2" in [s.key for s in feature_stage_list(institution=tenant_a.institution)]
    with pytest.raises(Exception, match="models were trained for this stage"):
        feature_stage_edit(institution=tenant_a.institution, action="remove", stage_key="end_of_term_2")


# --- pages and API --------------------------------------------------------------------------------

def test_the_model_page_shows_each_stages_live_model_and_filters_versions_by_stage(client, tenants):
    a, b = tenants
    registry_row(a.institution, number=1, status=ModelStatus.LIVE, stage=stage(a, "application"))
    registry_row(a.institution, number=2, stage=stage(a, "application"))
    registry_row(b.institution, number=1, status=ModelStatus.LIVE, stage=stage(b, "application"))
    registry_row(b.institution, number=7, stage=stage(b, "application"))
    client.force_login(a.viewer)
    page = client.get(reverse("model-list", args=["alpha"]))
    assert page.status_code == 200
    assert [(s.key, live.number if live else None) for s, live in page.context["live_by_stage"]] == \
        [("application", 1)]
    filtered = client.get(reverse("model-list", args=["alpha"]), {"stage": "application"})
    assert [v.number for v in filtered.context["versions"]] == [2, 1]
    assert filtered.context["stage"].institution_id == a.institution.pk
    assert [v.number for v in client.get(reverse("model-list", args=["alpha"]),
                                         {"stage": "end_of_term_1"}).context["versions"]] == []
    unknown = client.get(reverse("model-list", args=["alpha"]), {"stage": "nowhere"})
    assert unknown.status_code == 200 and "This institution has no such stage" in unknown.content.decode()
    assert [v.number for v in unknown.context["versions"]] == [2, 1]
    detail = client.get(reverse("model-detail", args=["alpha", 2]))
    assert "Application: learned only from the features known at this stage or earlier" in detail.content.decode()
    client.force_login(b.admin)
    assert client.get(reverse("model-detail", args=["alpha", 2])).status_code == 404
    assert client.get(reverse("model-list", args=["alpha"]), {"stage": "application"}).status_code == 404
    assert 7 not in [v.number for v in page.context["versions"]]


def test_the_decision_page_names_the_stage_whose_live_model_it_replaces(client, tenant_a):
    registry_row(tenant_a.institution, number=1, status=ModelStatus.LIVE, stage=stage(tenant_a, "end_of_term_1"))
    registry_row(tenant_a.institution, number=2, status=ModelStatus.LIVE, stage=stage(tenant_a, "enrolment"))
    registry_row(tenant_a.institution, number=3, stage=stage(tenant_a, "enrolment"))
    client.force_login(tenant_a.admin)
    page = client.get(reverse("model-promote", args=["alpha", 3]))
    assert page.context["live"].number == 2
    assert "the model of the stage “Enrolment”" in page.content.decode()


def test_api_says_each_versions_stage_and_filters_by_stage_of_this_institution_only(api_client, tenants):
    a, b = tenants
    registry_row(a.institution, number=1, stage=stage(a, "enrolment"))
    registry_row(a.institution, number=2)  # stored without a stage: the earliest one's
    registry_row(b.institution, number=1, stage=stage(b, "enrolment"))
    api_client.force_authenticate(a.viewer)
    url = reverse("api-model-version-list", args=["alpha"])
    rows = api_client.get(url).json()
    rows = rows.get("results", rows)
    assert {row["number"]: row["stage"] for row in rows} == {1: "enrolment", 2: "application"}
    only = api_client.get(url, {"stage": "enrolment"}).json()
    assert [row["number"] for row in only.get("results", only)] == [1]
    refused = api_client.get(url, {"stage": "nope"})
    assert refused.status_code == 400 and "no stage with this key" in refused.content.decode()
    api_client.force_authenticate(b.viewer)
    assert api_client.get(url, {"stage": "enrolment"}).status_code == 404
