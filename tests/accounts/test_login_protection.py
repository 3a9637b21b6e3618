"""Brute force is stopped (issue 18, item 5): after LOGIN_FAILURE_LIMIT failures for one username,
or from one address, even the right password is refused, on the site and on the staff admin."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
RIGHT = "pw-for-tests"


def attempt(client, username, password, *, url=None, address="10.0.0.1"):
    return client.post(url or reverse("login"), {"username": username, "password": password},
                       REMOTE_ADDR=address)


def is_logged_in(client) -> bool:
    return client.get(reverse("password_change")).status_code == 200


def test_forty_wrong_passwords_then_the_right_one_does_not_log_in(tenants, settings):
    a, _b = tenants
    client = Client()
    for _ in range(40):
        attempt(client, a.admin.username, "wrong-guess")
    response = attempt(client, a.admin.username, RIGHT)
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content and b"reset your password" in response.content
    assert not is_logged_in(client)


def test_the_lock_follows_the_account_to_another_address(tenant_a, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(Client(), tenant_a.advisor.username, "wrong", address="10.0.0.1")
    client = Client()
    assert attempt(client, tenant_a.advisor.username, RIGHT, address="10.9.9.9").status_code == 429
    assert not is_logged_in(client)


def test_one_address_guessing_many_accounts_is_locked_out_for_all_of_them(tenants, settings):
    a, b = tenants
    names = [UserFactory(username=f"spray-{i}").username for i in range(settings.AXES_FAILURE_LIMIT)]
    for name in names:
        attempt(Client(), name, "wrong", address="10.6.6.6")
    client = Client()
    assert attempt(client, b.viewer.username, RIGHT, address="10.6.6.6").status_code == 429
    assert not is_logged_in(client)
    # Someone else, from another address, is not affected.
    other = Client()
    assert attempt(other, a.viewer.username, RIGHT, address="10.7.7.7").status_code == 302
    assert is_logged_in(other)


def test_fewer_failures_than_the_limit_still_let_the_owner_in_and_reset_the_count(tenant_a, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(Client(), tenant_a.viewer.username, "typo")
    client = Client()
    assert attempt(client, tenant_a.viewer.username, RIGHT).status_code == 302
    assert is_logged_in(client)
    assert not AccessAttempt.objects.filter(username=tenant_a.viewer.username).exists()


def test_the_lock_ends_after_the_cool_off(tenant_a, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(Client(), tenant_a.viewer.username, "wrong")
    assert attempt(Client(), tenant_a.viewer.username, RIGHT).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    client = Client()
    assert attempt(client, tenant_a.viewer.username, RIGHT).status_code == 302
    assert is_logged_in(client)


def test_the_staff_admin_login_is_protected_too(db, settings):
    staff = UserFactory(username="platform-staff", is_staff=True, is_superuser=True)
    admin_login = reverse("admin:login")
    for _ in range(40):
        attempt(Client(), staff.username, "wrong", url=admin_login, address="10.1.1.1")
    client = Client()
    response = attempt(client, staff.username, RIGHT, url=admin_login, address="10.2.2.2")
    assert response.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302  # still sent to the login page


def test_a_forwarded_for_header_does_not_buy_a_fresh_address(tenant_a, settings):
    settings.LOGIN_TRUSTED_PROXY_COUNT = 1
    names = [UserFactory(username=f"rotating-{i}").username for i in range(settings.AXES_FAILURE_LIMIT)]
    for i, name in enumerate(names):
        # The client invents the left part; the proxy appends the address it saw (10.3.3.3).
        Client().post(reverse("login"), {"username": name, "password": "wrong"},
                      HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 10.3.3.3", REMOTE_ADDR="127.0.0.1")
    response = Client().post(reverse("login"), {"username": tenant_a.viewer.username, "password": RIGHT},
                             HTTP_X_FORWARDED_FOR="192.0.2.200, 10.3.3.3", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 429
