"""API of model versions, retrain/rescore requests and students' predictions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from institutions.api_keys import api_key_create
from institutions.jobs import job_create
from institutions.models import Job, JobKind
from institutions.scoping import institution_scope
from predictions.models import LatestPrediction, ModelStatus, ModelVersion, Prediction
from predictions.services.scoring import predictions_rescore
from students.models import Student

from .conftest import registry_row, rescore

pytestmark = pytest.mark.django_db


def _score(tenant):
    return rescore(tenant, full=True)[0]


def test_model_version_list_holds_only_own_institutions_versions(api_client, tenants):
    a, b = tenants
    registry_row(a.institution, number=1, status=ModelStatus.LIVE)
    registry_row(b.institution, number=1, status=ModelStatus.LIVE)
    registry_row(b.institution, number=2)
    api_client.force_authenticate(a.viewer)
    response = api_client.get(reverse("api-model-version-list", args=["alpha"]))
    assert response.status_code == 200
    assert [row["number"] for row in response.json()["results"]] == [1]
    assert "artifact" not in response.json()["results"][0]


def test_other_institutions_version_is_404_for_read_and_decisions(api_client, tenants):
    a, b = tenants
    registry_row(b.institution, number=5)
    api_client.force_authenticate(a.admin)
    missing = api_client.get(reverse("api-model-version-detail", args=["alpha", 99]))
    other = api_client.get(reverse("api-model-version-detail", args=["alpha", 5]))
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    for name in ("api-model-version-promote", "api-model-version-reject"):
        assert api_client.post(reverse(name, args=["alpha", 5])).status_code == 404
    for method in ("patch", "delete", "put"):
        assert getattr(api_client, method)(reverse("api-model-version-detail", args=["alpha", 5])).status_code in (
            404, 405)
    assert ModelVersion.objects.for_institution(b.institution).get(number=5).status == ModelStatus.CANDIDATE


def test_promote_and_reject_through_the_api(api_client, tenant_a):
    registry_row(tenant_a.institution, number=1)
    registry_row(tenant_a.institution, number=2)
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(reverse("api-model-version-promote", args=["alpha", 1]), {"note": "ok"})
    assert response.status_code == 200 and response.json()["status"] == "live"
    response = api_client.post(reverse("api-model-version-reject", args=["alpha", 2]))
    assert response.json()["status"] == "rejected"
    again = api_client.post(reverse("api-model-version-reject", args=["alpha", 2]))
    assert again.status_code == 400 and again.json()["code"] == "invalid"
    assert "only a candidate can be rejected" in again.json()["errors"]["status"][0]


def test_retrain_request_answers_202_with_job_url_and_a_second_request_joins(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    url = reverse("api-model-version-retrain", args=["alpha"])
    first = api_client.post(url)
    second = api_client.post(url)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["joined_active_job"] is True
    job_url = reverse("api-job-detail", args=["alpha", first.json()["id"]])
    assert first["Location"] == job_url == first.json()["url"]
    assert api_client.get(job_url).json()["kind"] == "retrain"


def test_rescore_request_records_full_flag(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(reverse("api-model-version-rescore", args=["alpha"]), {"full": True})
    assert response.status_code == 202
    assert Job.objects.for_institution(tenant_a.institution).get(pk=response.json()["id"]).params["full"] is True
    bad = api_client.post(reverse("api-model-version-rescore", args=["alpha"]), {"full": "perhaps"})
    assert bad.status_code == 400 and "full" in bad.json()["errors"]


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_admins_may_retrain_rescore_or_decide(api_client, tenant_a, role):
    registry_row(tenant_a.institution, number=1)
    api_client.force_authenticate(getattr(tenant_a, role))
    for url in (reverse("api-model-version-retrain", args=["alpha"]),
                reverse("api-model-version-rescore", args=["alpha"]),
                reverse("api-model-version-rollback", args=["alpha"]),
                reverse("api-model-version-promote", args=["alpha", 1])):
        assert api_client.post(url).status_code == 403, url
    assert not Job.objects.for_institution(tenant_a.institution).exists()


def test_student_prediction_has_explanation_and_history(api_client, trained_a):
    first = _score(trained_a)
    student = next(s for s in trained_a.students if s.outcome == "enrolled")
    with institution_scope(trained_a.institution):
        type(student).objects.filter(pk=student.pk).update(
            features={**student.features, "units_approved": 29.0, "tuition_up_to_date": True})
        second, _ = job_create(institution=trained_a.institution, kind=JobKind.RESCORE)
        predictions_rescore(institution=trained_a.institution, job=second)
    api_client.force_authenticate(trained_a.advisor)
    latest = api_client.get(reverse("api-student-prediction", args=["alpha", student.pk]))
    assert latest.status_code == 200
    body = latest.json()
    assert body["job"] == second.pk and body["model_version"] == trained_a.version.number
    assert body["factors"] and {"feature", "text", "contribution", "direction"} <= set(body["factors"][0])
    assert body["rank"] >= 1 and 0 <= body["percentile"] <= 100 and body["band"] in ("low", "medium", "high")
    history = api_client.get(reverse("api-student-prediction-history", args=["alpha", student.pk])).json()
    assert [item["job"] for item in history["results"]] == [second.pk, first.pk]
    assert history["results"][0]["risk"] < history["results"][1]["risk"]


def test_other_institutions_student_prediction_is_404_like_a_missing_student(api_client, tenants, trained_a):
    _a, b = tenants
    _score(trained_a)
    api_client.force_authenticate(b.admin)
    own_missing = api_client.get(reverse("api-student-prediction", args=["beta", 10 ** 9]))
    for name in ("api-student-prediction", "api-student-prediction-history"):
        response = api_client.get(reverse(name, args=["beta", trained_a.students[0].pk]))
        assert response.status_code == 404
        assert response.json() == own_missing.json()
    # And B's user cannot use A's slug at all.
    assert api_client.get(reverse("api-student-prediction", args=["alpha", trained_a.students[0].pk])
                          ).status_code == 404


def test_viewer_cannot_read_individual_predictions(api_client, trained_a):
    _score(trained_a)
    api_client.force_authenticate(trained_a.viewer)
    response = api_client.get(reverse("api-student-prediction", args=["alpha", trained_a.students[1].pk]))
    assert response.status_code == 403
    assert Prediction.objects.for_institution(trained_a.institution).exists()


def test_unscored_student_says_so(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.advisor)
    response = api_client.get(reverse("api-student-prediction", args=["alpha", tenant_a.students[0].pk]))
    assert response.status_code == 404 and response.json()["code"] == "not_scored"


def _latest_list(client, slug, **params):
    return client.get(reverse("api-latest-prediction-list", args=[slug]), params)


def test_latest_predictions_list_every_scored_student_in_rank_order_with_explanations(api_client, trained_a):
    _score(trained_a)
    api_client.force_authenticate(trained_a.advisor)
    body = _latest_list(api_client, "alpha", page_size=500).json()
    with institution_scope(trained_a.institution):
        stored = list(LatestPrediction.objects.order_by("rank"))
    assert body["count"] == len(stored) > 10
    assert [row["student"] for row in body["results"]] == [latest.student_id for latest in stored]
    assert [row["rank"] for row in body["results"]] == list(range(1, len(stored) + 1))
    one = body["results"][3]
    detail = api_client.get(reverse("api-student-prediction", args=["alpha", one["student"]])).json()
    assert one == detail  # the same fields as a single student's prediction, explanation included
    student = Student.objects.for_institution(trained_a.institution).get(pk=one["student"])
    assert one["factors"] and one["student_external_id"] == student.external_id


def test_latest_predictions_filter_by_band_and_flag(api_client, trained_a):
    _score(trained_a)
    api_client.force_authenticate(trained_a.advisor)
    with institution_scope(trained_a.institution):
        flagged = set(LatestPrediction.objects.filter(flagged=True).values_list("student_id", flat=True))
        high = set(LatestPrediction.objects.filter(band="high").values_list("student_id", flat=True))
    assert flagged and high
    for params, expected in (({"flagged": "true"}, flagged), ({"band": "high"}, high)):
        rows = _latest_list(api_client, "alpha", page_size=500, **params).json()["results"]
        assert {row["student"] for row in rows} == expected
    assert _latest_list(api_client, "alpha", band="extreme").status_code == 400


def test_latest_predictions_since_return_the_rows_whose_band_or_flag_moved(api_client, trained_a):
    from predictions.selectors import prediction_settings_get
    from predictions.services.ranking import latest_predictions_rank
    from predictions.services.settings import prediction_settings_update

    _score(trained_a)
    with institution_scope(trained_a.institution):
        before = {row.student_id: row.band for row in LatestPrediction.objects.all()}
        since = LatestPrediction.objects.order_by("-updated_at").first().updated_at
        settings = prediction_settings_update(institution=trained_a.institution,
                                              data={"band_high_from": 0.95, "band_medium_from": 0.9})
        latest_predictions_rank(institution=trained_a.institution, settings=settings)
        after = {row.student_id: row.band for row in LatestPrediction.objects.all()}
    moved = {student for student, band in after.items() if band != before[student]}
    assert moved and prediction_settings_get(institution=trained_a.institution).band_high_from == 0.95
    api_client.force_authenticate(trained_a.advisor)
    rows, url = [], reverse("api-latest-prediction-list", args=["alpha"])
    params = {"updated_since": (since + timedelta(microseconds=1)).isoformat(), "page_size": 7}
    while url:
        page = api_client.get(url, params).json()
        assert "count" not in page  # cursor mode
        rows += page["results"]
        url, params = page["next"], None
    assert moved <= {row["student"] for row in rows}
    assert all(row["band"] == after[row["student"]] for row in rows)


def test_latest_predictions_are_only_the_own_institutions(api_client, tenants, trained_a):
    _a, b = tenants
    _score(trained_a)
    api_client.force_authenticate(b.admin)
    assert _latest_list(api_client, "beta").json() == {"count": 0, "next": None, "previous": None, "results": []}
    missing = _latest_list(api_client, "no-such-institution")
    other = _latest_list(api_client, "alpha")
    assert other.status_code == missing.status_code == 404 and other.json() == missing.json()
    _key, raw = api_key_create(institution=b.institution, name="B", scopes=["predictions:read"])
    api_client.force_authenticate(None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _latest_list(api_client, "beta").status_code == 200
    assert _latest_list(api_client, "alpha").status_code == 404


def test_latest_predictions_need_the_predictions_scope_and_may_not_be_read_by_viewers(api_client, trained_a):
    _score(trained_a)
    api_client.force_authenticate(trained_a.viewer)
    assert _latest_list(api_client, "alpha").status_code == 403
    api_client.force_authenticate(None)
    _key, students_only = api_key_create(institution=trained_a.institution, name="S", scopes=["students:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {students_only}")
    assert _latest_list(api_client, "alpha").status_code == 403
    _key, predictions = api_key_create(institution=trained_a.institution, name="P", scopes=["predictions:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {predictions}")
    assert _latest_list(api_client, "alpha").status_code == 200


def test_latest_predictions_page_costs_the_same_queries_at_any_size(api_client, trained_a):
    _score(trained_a)
    api_client.force_authenticate(trained_a.advisor)
    counts = []
    for size in (2, 40):
        with CaptureQueriesContext(connection) as queries:
            assert len(_latest_list(api_client, "alpha", page_size=size).json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
