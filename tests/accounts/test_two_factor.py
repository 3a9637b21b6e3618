"""Two-factor sign-in with an authenticator app (TOTP), which an institution can make mandatory
for its administrators (issue 18, item 5)."""

import base64
import re
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SecurityPolicy
from institutions.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"


def log_in(client, user):
    return client.post(reverse("login"), {"username": user.username, "password": PASSWORD})


def code_for(device, offset=0):
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset * device.step
    return f"{totp.token():06d}"


def set_up_device(client, user):
    """Through the pages, as a person does: open set-up, read the key, confirm with a code."""
    page = client.get(reverse("two-factor-setup"))
    assert page.status_code == 200 and b"<svg" in page.content
    key = re.search(r'<code class="user-select-all">([A-Z2-7=]+)</code>', page.content.decode()).group(1)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert device.bin_key == base64.b32decode(key)
    confirmed = client.post(reverse("two-factor-setup"), {"token": code_for(device)})
    # A first set-up answers with the recovery codes, shown this once (tests/accounts/test_recovery_codes.py).
    assert confirmed.status_code == 200 and len(confirmed.context["codes"]) == 10
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_a_wrong_first_code_does_not_turn_it_on(client, tenant_a):
    client.force_login(tenant_a.advisor)
    client.get(reverse("two-factor-setup"))
    response = client.post(reverse("two-factor-setup"), {"token": "000000"})
    assert response.status_code == 400 and b"not right" in response.content
    assert not TOTPDevice.objects.filter(user=tenant_a.advisor, confirmed=True).exists()


def test_with_an_authenticator_the_password_alone_reaches_nothing(tenants):
    a, _b = tenants
    setup = Client()
    log_in(setup, a.advisor)
    device = set_up_device(setup, a.advisor)

    client = Client()
    assert log_in(client, a.advisor).status_code == 302
    home = reverse("institution-home", args=["alpha"])
    response = client.get(home)
    assert response.status_code == 302 and response["Location"].startswith(reverse("two-factor-verify"))
    assert client.get(reverse("member-list", args=["alpha"])).status_code == 302
    api = client.get("/api/v1/institutions/alpha/students/")
    assert api.status_code == 403 and api.json()["code"] == "two_factor_code_needed"
    assert client.post(reverse("two-factor-verify"), {"token": "123456" if code_for(device) != "123456"
                                                      else "654321"}).status_code == 400
    assert client.get(home).status_code == 302
    # Django-otp throttles after a wrong code; the next try may wait a second.
    time.sleep(1.1)
    assert client.post(reverse("two-factor-verify"), {"token": code_for(device, 1), "next": home}
                       ).status_code == 302
    assert client.get(reverse("caseload", args=["alpha"])).status_code == 200


def test_an_institution_can_require_it_of_its_admins_only(tenants):
    a, b = tenants
    admin = Client()
    log_in(admin, a.admin)
    # Not before the admin uses it themself.
    response = admin.post(reverse("security-policy", args=["alpha"]), {"require_admin_two_factor": "on"})
    assert response.status_code == 400 and b"your own account first" in response.content
    set_up_device(admin, a.admin)
    assert admin.post(reverse("security-policy", args=["alpha"]), {"require_admin_two_factor": "on"}
                      ).status_code == 302
    policy = SecurityPolicy.objects.for_institution(a.institution).get()
    assert policy.require_admin_two_factor and policy.updated_by == a.admin
    own = TOTPDevice.objects.get(user=a.admin)
    refused = admin.post(reverse("two-factor"), {"token": code_for(own, 1)})
    assert refused.status_code == 400 and b"requires two-factor" in refused.content
    assert TOTPDevice.objects.filter(user=a.admin, confirmed=True).exists()

    # A second admin of A without an authenticator is sent to set one up, and cannot turn it off.
    second = Client()
    Membership.objects.for_institution(a.institution).filter(user=a.viewer).update(role="admin")
    log_in(second, a.viewer)
    response = second.get(reverse("member-list", args=["alpha"]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("two-factor-setup"))
    # A's advisor and B's admin are not affected.
    for user in (a.advisor, b.admin):
        other = Client()
        log_in(other, user)
        assert other.get(reverse("password_change")).status_code == 200


def test_another_institutions_admin_cannot_see_or_change_its_rule(client, tenants):
    a, b = tenants
    client.force_login(b.admin)
    assert client.get(reverse("security-policy", args=["alpha"])).status_code == 404
    assert client.post(reverse("security-policy", args=["alpha"]), {"require_admin_two_factor": "on"}
                       ).status_code == 404
    assert not SecurityPolicy.objects.for_institution(a.institution).exists()
    client.force_login(a.advisor)
    assert client.get(reverse("security-policy", args=["alpha"])).status_code == 403


def test_turning_it_off_needs_a_current_code(tenant_a):
    client = Client()
    log_in(client, tenant_a.advisor)
    device = set_up_device(client, tenant_a.advisor)
    assert client.post(reverse("two-factor"), {"token": "bad"}).status_code == 400
    assert TOTPDevice.objects.filter(user=tenant_a.advisor, confirmed=True).exists()
    assert client.post(reverse("two-factor"), {"token": code_for(device, 1)}).status_code == 302
    assert not TOTPDevice.objects.filter(user=tenant_a.advisor).exists()


def test_the_staff_admin_asks_for_the_code_too(db):
    staff = UserFactory(username="platform-staff", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    device = set_up_device(client, staff)
    fresh = Client()
    assert fresh.post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD}).status_code == 302
    response = fresh.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("two-factor-verify"))
    assert fresh.post(reverse("two-factor-verify"), {"token": code_for(device, 1)}).status_code == 302
    assert fresh.get(reverse("admin:index")).status_code == 200
