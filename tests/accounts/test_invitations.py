"""Adding a member is inviting an email address (issue 18, item 4): no path attaches an account
that exists elsewhere without its owner accepting, the reply never says whether an address or a
username exists, API-key service users are never attachable, and A's invitations stay A's."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation
from institutions.api_keys import api_key_create
from institutions.models import Membership

pytestmark = pytest.mark.django_db
STRONG = "correct-horse-battery-staple-42"


def invite(client, slug, email, role="advisor"):
    return client.post(reverse("invitation-list", args=[slug]), {"email": email, "role": role}, follow=True)


def last_link():
    body = mail.outbox[-1].body
    return re.search(r"https?://\S+/accounts/invitations/\S+/", body).group(0)


def path_of(link):
    return link.split("testserver", 1)[1]


def members(tenant):
    return set(Membership.objects.for_institution(tenant.institution).values_list("user__username", flat=True))


def test_a_new_person_sets_their_own_password_through_the_link_and_joins_with_the_role(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    response = invite(client, "alpha", "newbie@example.edu", "viewer")
    assert response.status_code == 200
    assert [m.to for m in mail.outbox] == [["newbie@example.edu"]]
    link = last_link()
    assert "/accounts/invitations/alpha/" in link
    stored = Invitation.objects.for_institution(a.institution).get()
    assert stored.token_hash not in link and len(stored.token_hash) == 64
    client.logout()

    page = client.get(path_of(link))
    assert page.status_code == 200 and b"Join ALPHA University" in page.content
    response = client.post(path_of(link), {"username": "newbie", "password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "newbie@example.edu" and user.check_password(STRONG)
    assert Membership.objects.for_institution(a.institution).get(user=user).role == "viewer"
    assert not Membership.objects.for_institution(b.institution).filter(user=user).exists()
    # Used once: the same link no longer works, for anybody.
    client.logout()
    assert client.get(path_of(link)).status_code == 404
    assert client.post(path_of(link), {"username": "other", "password1": STRONG, "password2": STRONG}
                       ).status_code == 404
    assert not get_user_model().objects.filter(username="other").exists()


def test_no_password_is_shown_on_a_page_or_put_in_the_messages_cookie(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = invite(client, "alpha", "quiet@example.edu")
    assert b"password" not in response.content.split(b"<main")[-1].lower().split(b"invite a member")[0]
    cookie = response.client.cookies.get("messages")
    assert cookie is None or "password" not in cookie.value.lower()


@pytest.mark.parametrize("weak", ["short", "password123", "12345678901"])
def test_a_weak_password_is_refused_by_the_validators_and_creates_nobody(client, tenant_a, weak):
    client.force_login(tenant_a.admin)
    invite(client, "alpha", "weak@example.edu")
    client.logout()
    response = client.post(path_of(last_link()), {"username": "weakling", "password1": weak, "password2": weak})
    assert response.status_code == 400
    assert not get_user_model().objects.filter(username="weakling").exists()
    assert Invitation.objects.for_institution(tenant_a.institution).get().is_pending


def test_the_reply_is_the_same_whether_or_not_the_address_has_an_account(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    known = invite(client, "alpha", b.admin.email)
    unknown = invite(client, "alpha", "nobody-here@example.edu")
    texts = [[str(m) for m in r.context["messages"]] for r in (known, unknown)]
    assert texts == [[f"Invitation sent to {b.admin.email} as Advisor."],
                     ["Invitation sent to nobody-here@example.edu as Advisor."]]
    assert known.status_code == unknown.status_code == 200
    # An existing username typed as the address is just an invalid address, like any other word.
    assert invite(client, "alpha", b.admin.username).status_code == 400
    assert "beta-admin" not in members(a)


def test_an_account_from_elsewhere_is_attached_only_when_its_owner_accepts_logged_in(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    invite(client, "alpha", b.admin.email, "viewer")
    link = path_of(last_link())
    assert "beta-admin" not in members(a)
    client.logout()
    client.force_login(b.admin)
    page = client.get(link)
    assert b"Accept with the account you are logged in as" in page.content
    assert "beta-admin" not in members(a)
    assert client.post(link).status_code == 302
    assert Membership.objects.for_institution(a.institution).get(user=b.admin).role == "viewer"
    assert Membership.objects.for_institution(b.institution).get(user=b.admin).role == "admin"


def test_an_api_key_service_user_is_never_attachable(client, tenants):
    a, b = tenants
    key, _raw = api_key_create(institution=b.institution, name="SIS", scopes=["students:read"])
    client.force_login(a.admin)
    invite(client, "alpha", "sis@example.edu", "admin")
    link = path_of(last_link())
    client.force_login(key.service_user)
    response = client.post(link)
    assert response.status_code == 400
    assert b"service account cannot join" in response.content
    assert not Membership.objects.for_institution(a.institution).filter(user=key.service_user).exists()
    assert Invitation.objects.for_institution(a.institution).get().is_pending


def test_another_institutions_admin_cannot_see_or_revoke_as_invitations(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    invite(client, "alpha", "someone@example.edu")
    invitation = Invitation.objects.for_institution(a.institution).get()
    client.force_login(b.admin)
    assert client.get(reverse("invitation-list", args=["alpha"])).status_code == 404
    listed = client.get(reverse("invitation-list", args=["beta"])).context["invitations"]
    assert list(listed) == []
    assert client.post(reverse("invitation-revoke", args=["beta", invitation.pk])).status_code == 404
    assert client.post(reverse("invitation-revoke", args=["alpha", invitation.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_the_link_for_a_never_grants_b(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    invite(client, "alpha", "someone@example.edu")
    link = path_of(last_link())
    as_beta = link.replace("/invitations/alpha/", "/invitations/beta/")
    client.logout()
    assert client.get(as_beta).status_code == 404
    assert client.post(as_beta, {"username": "sneaky", "password1": STRONG, "password2": STRONG}).status_code == 404
    client.force_login(b.viewer)
    assert client.post(as_beta).status_code == 404
    assert "sneaky" not in members(b) and "beta-viewer" in members(b)
    assert not get_user_model().objects.filter(username="sneaky").exists()


def test_a_tampered_an_expired_and_a_revoked_link_do_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    invite(client, "alpha", "first@example.edu")
    first = path_of(last_link())
    token = first.rstrip("/").rsplit("/", 1)[1]
    payload = signing.loads(token, salt="accounts.invitation")
    forged = signing.dumps({"i": payload["i"], "t": payload["t"] + "x"}, salt="other")
    assert client.get(first.replace(token, forged)).status_code == 404
    assert client.get(first.replace(token, token[:-2] + "zz")).status_code == 404

    invitation = Invitation.objects.for_institution(tenant_a.institution).get()
    response = client.post(reverse("invitation-revoke", args=["alpha", invitation.pk]), follow=True)
    assert "its link no longer works" in str(next(iter(response.context["messages"])))
    client.logout()
    assert client.get(first).status_code == 404

    client.force_login(tenant_a.admin)
    invite(client, "alpha", "second@example.edu")
    second = path_of(last_link())
    Invitation.objects.for_institution(tenant_a.institution).filter(email="second@example.edu").update(
        expires_at=timezone.now() - timedelta(seconds=1))
    client.logout()
    assert client.get(second).status_code == 404


def test_inviting_again_replaces_the_pending_invitation_and_its_link(client, tenant_a):
    client.force_login(tenant_a.admin)
    invite(client, "alpha", "twice@example.edu")
    old = path_of(last_link())
    invite(client, "alpha", "Twice@example.edu", "viewer")
    new = path_of(last_link())
    client.logout()
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_a_bad_address_is_refused_with_a_message_and_sends_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = invite(client, "alpha", "not an address")
    assert response.status_code == 400 and b"valid email address" in response.content
    assert mail.outbox == [] and not Invitation.objects.for_institution(tenant_a.institution).exists()


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_admins_invite(client, tenant_a, role):
    client.force_login(getattr(tenant_a, role))
    assert client.get(reverse("invitation-list", args=["alpha"])).status_code == 403
    assert client.post(reverse("invitation-list", args=["alpha"]), {"email": "x@example.edu", "role": "admin"}
                       ).status_code == 403
    assert mail.outbox == []


def test_the_member_page_no_longer_attaches_accounts_by_username(client, tenants):
    a, _b = tenants
    client.force_login(a.admin)
    response = client.post(reverse("member-list", args=["alpha"]), {"username": "beta-admin", "role": "admin"})
    assert response.status_code == 405
    assert "beta-admin" not in members(a)


def test_the_link_page_shows_no_institution_menu_before_joining(client, tenant_a):
    client.force_login(tenant_a.admin)
    invite(client, "alpha", "menu@example.edu")
    client.logout()
    page = client.get(path_of(last_link()))
    assert page.status_code == 200 and b"Join ALPHA University" in page.content
    assert reverse("dashboard", args=["alpha"]).encode() not in page.content
