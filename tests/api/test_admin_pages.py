"""Platform staff see keys and webhooks of every institution in the admin, never a key's secret."""

import pytest

from institutions.webhooks import webhook_endpoint_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_staff_admin_lists_keys_and_endpoints_without_secrets(client, tenants, make_key):
    a, b = tenants
    key_a, raw_a = make_key(a)
    endpoint = webhook_endpoint_create(institution=b.institution, url="https://hooks.example.edu/x",
                                       events=["job.finished"])
    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    keys_page = client.get("/admin/institutions/apikey/").content.decode()
    assert key_a.display_prefix in keys_page and raw_a not in keys_page
    detail = client.get(f"/admin/institutions/webhookendpoint/{endpoint.pk}/change/")
    assert detail.status_code == 200 and endpoint.secret not in detail.content.decode()
    assert client.get("/admin/institutions/webhookdelivery/").status_code == 200
