"""Signing in through an institution's OpenID Connect provider: a real provider process
(tests/peers/oidc_provider, django-oauth-toolkit) on 127.0.0.1 with a key generated for the run.
Each refusal is a specific page, and changes no account or membership."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import SsoIdentity
from institutions.models import Membership, Role
from tests.peers.oidc import oidc_peer  # noqa: F401 - the fixture

from .sso_helpers import PASSWORD, authorize_at_peer, callback_path, oidc_provider_for, sign_in, start

User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_fault(oidc_peer):  # noqa: F811
    oidc_peer.fault("")
    yield
    oidc_peer.fault("")


def refusal(response) -> str:
    assert response.status_code == 403, response.content[:800]
    text = response.content.decode()
    assert "Sign-in refused" in text
    return text


def person(peer, username, groups, email=None):
    peer.add_person(username, password=PASSWORD, email=email or f"{username}@alpha.example", groups=groups,
                    first_name=username.title(), last_name="Tester")


def snapshot():
    return (User.objects.count(), Membership.objects.unscoped().count(), SsoIdentity.objects.unscoped().count())


def test_first_sign_in_creates_the_account_and_membership_with_the_mapped_role(tenants, oidc_peer, client):  # noqa: F811
    a, b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "dana", ["advisors"])
    response = sign_in(client, provider, "dana")
    assert response.status_code == 302 and response["Location"] == f"/i/{a.institution.slug}/"
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    assert (user.email, user.first_name, user.has_usable_password()) == ("dana@alpha.example", "Dana", False)
    assert Membership.objects.for_institution(a.institution).get(user=user).role == Role.ADVISOR
    assert not Membership.objects.for_institution(b.institution).filter(user=user).exists()
    assert client.get(f"/i/{a.institution.slug}/", follow=True).status_code == 200
    assert client.get(f"/i/{b.institution.slug}/").status_code == 404


def test_the_role_follows_the_groups_at_every_sign_in_and_ends_when_they_are_gone(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "eli", ["advisors"])
    assert sign_in(client, provider, "eli").status_code == 302
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    memberships = Membership.objects.for_institution(a.institution)
    assert memberships.get(user=user).role == Role.ADVISOR

    person(oidc_peer, "eli", ["advisors", "it-admins"])  # both: the highest role wins
    assert sign_in(Client(), provider, "eli").status_code == 302
    assert memberships.get(user=user).role == Role.ADMIN

    person(oidc_peer, "eli", ["alumni"])  # left every mapped group
    text = refusal(sign_in(Client(), provider, "eli"))
    assert "none of your groups values gives a role" in text and "membership of ALPHA University has ended" in text
    assert not memberships.filter(user=user).exists()
    assert User.objects.filter(pk=user.pk).exists()  # the account stays; it has no membership here


def test_an_unknown_person_is_refused_when_accounts_are_not_created_automatically(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer, jit_provisioning=False)
    person(oidc_peer, "fay", ["advisors"])
    before = snapshot()
    text = refusal(sign_in(client, provider, "fay"))
    assert "not connected to an account at ALPHA University" in text and "Ask an administrator" in text
    assert snapshot() == before
    assert "_auth_user_id" not in client.session


def test_a_person_no_rule_maps_is_refused_and_nothing_is_created(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "gus", ["students"])
    before = snapshot()
    assert "none of your groups values gives a role at ALPHA University" in refusal(sign_in(client, provider, "gus"))
    assert snapshot() == before


def test_the_default_role_applies_when_no_rule_matches(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer, default_role=Role.VIEWER)
    person(oidc_peer, "hal", ["students"])
    assert sign_in(client, provider, "hal").status_code == 302
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    assert Membership.objects.for_institution(a.institution).get(user=user).role == Role.VIEWER


def test_an_existing_account_with_the_same_email_is_never_attached(tenants, oidc_peer, client):  # noqa: F811
    a, b = tenants
    b.admin.email = "boss@beta.example"
    b.admin.save()
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "impostor", ["it-admins"], email="boss@beta.example")
    assert sign_in(client, provider, "impostor").status_code == 302
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    assert user.pk != b.admin.pk and user.email == "boss@beta.example"
    assert int(client.session["_auth_user_id"]) == user.pk
    assert not Membership.objects.for_institution(a.institution).filter(user=b.admin).exists()
    assert Membership.objects.unscoped().filter(user=b.admin).count() == 1
    assert client.get(f"/i/{b.institution.slug}/").status_code == 404


@pytest.mark.parametrize(("fault", "message"), [
    ("tamper", "invalid signature"),
    ("wrong_audience", "issued for another application (wrong audience)"),
    ("expired", "has expired"),
])
def test_a_bad_id_token_is_refused(tenants, oidc_peer, client, fault, message):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "ivy", ["advisors"])
    oidc_peer.fault(fault)
    before = snapshot()
    assert message in refusal(sign_in(client, provider, "ivy"))
    assert snapshot() == before
    assert "_auth_user_id" not in client.session


def test_a_replayed_answer_is_refused(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "jo", ["advisors"])
    callback = authorize_at_peer(start(client, provider), "jo")
    assert client.get(callback_path(callback)).status_code == 302
    # The same answer again, in the same browser and in another one: its state was used up.
    assert "already completed or has expired" in refusal(client.get(callback_path(callback)))
    stranger = Client()
    assert "already completed or has expired" in refusal(stranger.get(callback_path(callback)))
    assert "_auth_user_id" not in stranger.session


def test_an_id_token_issued_for_an_earlier_sign_in_is_refused(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "kim", ["advisors"])
    assert sign_in(client, provider, "kim").status_code == 302
    oidc_peer.fault("stale_nonce")  # the provider answers with the previous sign-in's nonce
    other = Client()
    assert "its nonce does not match" in refusal(sign_in(other, provider, "kim"))
    assert "_auth_user_id" not in other.session


def test_an_answer_for_one_institution_does_not_sign_in_to_another(tenants, oidc_peer, client):  # noqa: F811
    a, b = tenants
    provider_a = oidc_provider_for(a.institution, oidc_peer)
    provider_b = oidc_provider_for(b.institution, oidc_peer, jit_provisioning=False)
    person(oidc_peer, "lee", ["it-admins"])
    assert sign_in(client, provider_a, "lee").status_code == 302
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider_a).user
    assert not Membership.objects.for_institution(b.institution).filter(user=user).exists()

    # The same person at B's provider (same issuer, B's client): not linked there, JIT off: refused.
    assert "not connected to an account at BETA University" in refusal(sign_in(Client(), provider_b, "lee"))
    # A's answer delivered to B's return address: the state belongs to A's provider, so it is refused.
    other = Client()
    callback = authorize_at_peer(start(other, provider_a), "lee")
    path_b = callback_path(callback).replace(provider_a.allauth_provider_id, provider_b.allauth_provider_id)
    refusal(other.get(path_b))
    assert SsoIdentity.objects.for_institution(b.institution).count() == 0
    assert not Membership.objects.for_institution(b.institution).filter(user=user).exists()


def test_a_member_connects_their_account_then_signs_in_with_it(tenants, oidc_peer, client):  # noqa: F811
    a, b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer, jit_provisioning=False)
    person(oidc_peer, "alpha.advisor", ["advisors"])
    client.force_login(a.advisor)
    response = sign_in(client, provider, "alpha.advisor", process="connect")
    assert response.status_code == 302
    assert SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user == a.advisor

    fresh = Client()
    assert sign_in(fresh, provider, "alpha.advisor").status_code == 302
    assert int(fresh.session["_auth_user_id"]) == a.advisor.pk

    # B's member cannot connect to A's provider.
    person(oidc_peer, "beta.person", ["advisors"])
    outsider = Client()
    outsider.force_login(b.advisor)
    assert "Only members of ALPHA University" in refusal(sign_in(outsider, provider, "beta.person", process="connect"))
    assert not SsoIdentity.objects.for_institution(a.institution).filter(user=b.advisor).exists()


def test_a_disabled_or_unknown_provider_has_no_sign_in(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer, enabled=False)
    url = reverse("openid_connect_login", kwargs={"provider_id": provider.allauth_provider_id})
    assert client.post(url).status_code == 404
    assert client.post(reverse("openid_connect_login", kwargs={"provider_id": "idp999999"})).status_code == 404
    assert client.post(reverse("openid_connect_login", kwargs={"provider_id": "nonsense"})).status_code == 404


def test_a_userinfo_answer_about_someone_else_is_refused(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    person(oidc_peer, "max", ["advisors"])
    oidc_peer.fault("userinfo_other_subject")
    before = snapshot()
    assert "userinfo answer is about someone else" in refusal(sign_in(client, provider, "max"))
    assert snapshot() == before


def test_a_provider_whose_discovery_names_another_issuer_is_refused(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    # The same server reached by another name: its discovery document names http://127.0.0.1:<port>/o.
    provider = oidc_provider_for(a.institution, oidc_peer)
    provider.oidc_issuer = oidc_peer.issuer.replace("127.0.0.1", "localhost")
    provider.save()
    response = client.post(reverse("openid_connect_login", kwargs={"provider_id": provider.allauth_provider_id}))
    assert "names the issuer" in refusal(response)


def test_an_unreachable_provider_is_refused_with_a_page_not_an_error(tenants, oidc_peer, client):  # noqa: F811
    a, _b = tenants
    provider = oidc_provider_for(a.institution, oidc_peer)
    provider.oidc_issuer = "http://127.0.0.1:9/o"  # nothing listens on the discard port
    provider.save()
    response = client.post(reverse("openid_connect_login", kwargs={"provider_id": provider.allauth_provider_id}))
    assert "could not be reached" in refusal(response)
