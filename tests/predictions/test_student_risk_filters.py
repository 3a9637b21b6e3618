import pytest
from django.urls import reverse

from institutions.api_keys import api_key_create
from predictions.models import LatestPrediction

from .conftest import rescore

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored_a(trained_a):
    rescore(trained_a, full=True)
    return trained_a


def _listed(api_client, slug, **params):
    response = api_client.get(reverse("api-student-list", args=[slug]), {**params, "page_size": 500})
    assert response.status_code == 200, response.content[:300]
    return {row["id"] for row in response.json()["results"]}


def test_students_filter_by_band_and_flag_of_the_latest_prediction(api_client, scored_a, tenant_b):
    latest = LatestPrediction.objects.for_institution(scored_a.institution)
    api_client.force_authenticate(scored_a.admin)
    assert latest.count() > 10 and latest.values("band").distinct().count() >= 2
    for band in ("high", "medium", "low"):
        assert _listed(api_client, "alpha", band=band) == set(latest.filter(band=band).values_list("student_id",
                                                                                                   flat=True))
    # The filter is under test here, not the flag rule: mark the two riskiest students flagged.
    top_two = list(latest.order_by("-risk").values_list("pk", flat=True)[:2])
    latest.filter(pk__in=top_two).update(flagged=True)
    latest.exclude(pk__in=top_two).update(flagged=False)
    flagged = set(latest.filter(flagged=True).values_list("student_id", flat=True))
    assert len(flagged) == 2 and _listed(api_client, "alpha", flagged="true") == flagged
    assert not _listed(api_client, "alpha", flagged="false") & flagged
    assert api_client.get(reverse("api-student-list", args=["alpha"]), {"band": "extreme"}).status_code == 400


def test_band_filter_never_reaches_another_institutions_students(api_client, scored_a, tenant_b):
    api_client.force_authenticate(scored_a.admin)
    b_ids = {s.pk for s in tenant_b.students}
    for band in ("high", "medium", "low"):
        assert not _listed(api_client, "alpha", band=band) & b_ids
    assert api_client.get(reverse("api-student-list", args=["beta"]), {"band": "high"}).status_code == 404


def test_an_api_key_with_students_read_scope_can_filter_by_band(api_client, scored_a):
    _, raw = api_key_create(institution=scored_a.institution, name="sis", scopes=["students:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.get(reverse("api-student-list", args=["alpha"]), {"band": "high"})
    assert response.status_code == 200
    high = LatestPrediction.objects.for_institution(scored_a.institution).filter(band="high").count()
    assert response.json()["count"] == high
