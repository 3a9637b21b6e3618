"""Recovery codes for two-factor sign-in: shown once, stored hashed, each works once instead of
the app's code, and new ones replace the old (docs/accounts.md, "Recovery codes")."""

import re
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import RecoveryCode, RecoveryCodeDevice

from .test_two_factor import code_for, log_in

pytestmark = pytest.mark.django_db
CODE = re.compile(r"\b[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}\b")


def turn_on_two_factor(client, user):
    """Set-up through the pages; returns the TOTP device and the codes the confirming page showed."""
    page = client.get(reverse("two-factor-setup"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    shown = client.post(reverse("two-factor-setup"), {"token": code_for(device)})
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    codes = CODE.findall(shown.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    device.refresh_from_db()
    return device, codes


def second_step(user, token):
    """A fresh login with the password, then ``token`` on the code page; True when it got in."""
    client = Client()
    assert log_in(client, user).status_code == 302
    client.post(reverse("two-factor-verify"), {"token": token})
    return client.get(reverse("password_change")).status_code == 200, client


def test_the_codes_are_shown_once_and_only_their_hashes_are_stored(tenant_a):
    client = Client()
    log_in(client, tenant_a.admin)
    _device, codes = turn_on_two_factor(client, tenant_a.admin)
    stored = list(RecoveryCode.objects.filter(device__user=tenant_a.admin).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    # Never again on a page: the account page gives only the count.
    account_page = client.get(reverse("two-factor")).content.decode()
    assert not CODE.findall(account_page)
    assert "10 unused recovery codes left" in account_page
    # Nor in a cookie.
    assert not any(code in morsel.value for code in codes for morsel in client.cookies.values())


def test_a_recovery_code_stands_in_for_the_app_once(tenants):
    a, b = tenants
    setup = Client()
    log_in(setup, a.admin)
    _device, codes = turn_on_two_factor(setup, a.admin)

    ok, client = second_step(a.admin, codes[0].upper().replace("-", " "))  # as typed from paper
    assert ok
    assert client.get(reverse("institution-home", args=["alpha"])).status_code == 200
    assert "9 unused recovery codes left" in client.get(reverse("two-factor")).content.decode()
    # The same code a second time gets nowhere.
    ok, again = second_step(a.admin, codes[0])
    assert not ok
    assert again.get(reverse("institution-home", args=["alpha"]))["Location"].startswith(reverse("two-factor-verify"))
    # Another person's code is not this person's.
    other = Client()
    log_in(other, b.admin)
    _b_device, b_codes = turn_on_two_factor(other, b.admin)
    assert not second_step(a.admin, b_codes[0])[0]
    time.sleep(2.1)  # two wrong codes in a row: django-otp makes the next try wait 2 s
    assert second_step(a.admin, codes[1])[0]


def test_a_wrong_recovery_code_is_refused_and_slowed_down(tenant_a):
    setup = Client()
    log_in(setup, tenant_a.advisor)
    _device, codes = turn_on_two_factor(setup, tenant_a.advisor)
    client = Client()
    log_in(client, tenant_a.advisor)
    wrong = client.post(reverse("two-factor-verify"), {"token": "aaaa-bbbb-cccc"})
    assert wrong.status_code == 400 and b"not right" in wrong.content
    # Straight after a wrong one, even a right one waits (django-otp's doubling back-off).
    slowed = client.post(reverse("two-factor-verify"), {"token": codes[0]})
    assert slowed.status_code == 400 and b"Too many wrong codes" in slowed.content
    assert RecoveryCode.objects.filter(device__user=tenant_a.advisor, used_at=None).count() == 10


def test_new_codes_need_a_current_app_code_and_end_the_old_ones(tenant_a):
    client = Client()
    log_in(client, tenant_a.admin)
    device, old = turn_on_two_factor(client, tenant_a.admin)
    refused = client.post(reverse("two-factor-recovery-codes"), {"token": "000000" if code_for(device, 1) != "000000"
                                                                 else "111111"})
    assert refused.status_code == 400 and b"current code from the app" in refused.content
    assert RecoveryCode.objects.filter(device__user=tenant_a.admin, used_at=None).count() == 10

    time.sleep(1.1)  # the wrong code above slowed the app's device down for a second
    fresh = client.post(reverse("two-factor-recovery-codes"), {"token": code_for(device, 1)})
    assert fresh.status_code == 200 and "no-store" in fresh["Cache-Control"]
    new = CODE.findall(fresh.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert second_step(tenant_a.admin, new[0])[0]
    assert not second_step(tenant_a.admin, old[0])[0]


def test_moving_to_a_new_phone_keeps_the_codes_and_turning_off_removes_them(tenant_a):
    client = Client()
    log_in(client, tenant_a.advisor)
    _device, codes = turn_on_two_factor(client, tenant_a.advisor)
    client.get(reverse("two-factor-setup"))
    moving = TOTPDevice.objects.get(user=tenant_a.advisor, confirmed=False)
    moved = client.post(reverse("two-factor-setup"), {"token": code_for(moving)})
    assert moved.status_code == 302  # codes still unused: nothing new to show
    assert second_step(tenant_a.advisor, codes[0])[0]
    assert client.post(reverse("two-factor"), {"token": code_for(moving, 1)}).status_code == 302
    assert not RecoveryCodeDevice.objects.filter(user=tenant_a.advisor).exists()
    assert not RecoveryCode.objects.filter(device__user=tenant_a.advisor).exists()


def test_without_an_authenticator_there_are_no_recovery_codes(client, tenant_a):
    client.force_login(tenant_a.viewer)
    response = client.post(reverse("two-factor-recovery-codes"), {"token": "123456"})
    assert response.status_code == 400 and b"authenticator app first" in response.content
    assert not RecoveryCodeDevice.objects.filter(user=tenant_a.viewer).exists()
