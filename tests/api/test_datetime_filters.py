import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["2020-01-01T00:00:00-18:48", "2020-01-01T00:00:00+15:59"])
def test_updated_since_accepts_any_valid_offset(api_client, tenant_a, value):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.get(reverse("api-student-list", args=["alpha"]), {"updated_since": value})
    assert response.status_code == 200
    assert len(response.json()["results"]) == len(tenant_a.students)


def test_updated_since_outside_the_calendar_is_a_clear_400(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.get(reverse("api-student-list", args=["alpha"]),
                              {"updated_since": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400
    assert "out of the supported range" in str(response.json()["errors"])
