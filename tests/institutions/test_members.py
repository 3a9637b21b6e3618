import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from institutions.models import Membership, Role
from students.models import Student

pytestmark = pytest.mark.django_db


def members_url(slug):
    return reverse("member-list", args=[slug])


def test_admin_adds_a_new_user_who_can_then_log_in(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(members_url("alpha"), {"username": "newbie", "email": "n@example.edu", "role": "advisor"},
                           follow=True)
    assert response.status_code == 200
    message = next(iter(response.context["messages"])).message
    password = message.split("one-time password ")[1].split(" ")[0]
    client.logout()
    assert client.login(username="newbie", password=password)
    assert Membership.objects.for_institution(tenant_a.institution).get(user__username="newbie").role == "advisor"


def test_adding_an_existing_member_again_is_refused_and_changes_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(members_url("alpha"), {"username": "alpha-viewer", "role": "admin"})
    assert response.status_code == 400
    assert b"already a member" in response.content
    assert Membership.objects.for_institution(tenant_a.institution).get(user=tenant_a.viewer).role == "viewer"


@pytest.mark.parametrize("username", ["has space", "semi;colon", "é" * 151, "<script>"])
def test_an_invalid_new_username_is_refused_with_a_message_and_creates_nobody(client, tenants, username):
    a, _b = tenants
    client.force_login(a.admin)
    users_before = get_user_model().objects.count()
    members_before = [Membership.objects.for_institution(t.institution).count() for t in tenants]
    response = client.post(members_url("alpha"), {"username": username, "role": "advisor"})
    assert response.status_code == 400
    assert b"Enter a valid username" in response.content or b"at most 150 characters" in response.content
    assert get_user_model().objects.count() == users_before
    assert [Membership.objects.for_institution(t.institution).count() for t in tenants] == members_before


def test_the_last_admin_cannot_be_demoted_or_removed(client, tenant_a):
    client.force_login(tenant_a.admin)
    own = Membership.objects.for_institution(tenant_a.institution).get(user=tenant_a.admin)
    client.post(reverse("member-update", args=["alpha", own.pk]), {"role": "viewer"})
    client.post(reverse("member-update", args=["alpha", own.pk]), {"remove": "1"})
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_removing_an_advisor_unassigns_their_students(client, tenant_a):
    client.force_login(tenant_a.admin)
    membership = Membership.objects.for_institution(tenant_a.institution).get(user=tenant_a.advisor)
    client.post(reverse("member-update", args=["alpha", membership.pk]), {"remove": "1"})
    assert not Membership.objects.for_institution(tenant_a.institution).filter(user=tenant_a.advisor).exists()
    assert not Student.objects.for_institution(tenant_a.institution).filter(advisor=tenant_a.advisor).exists()
    assert get_user_model().objects.filter(pk=tenant_a.advisor.pk).exists()


def test_admin_of_other_institution_cannot_see_or_change_members(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    assert client.get(members_url("beta")).status_code == 404
    b_membership = Membership.objects.for_institution(b.institution).get(user=b.advisor)
    assert client.post(reverse("member-update", args=["alpha", b_membership.pk]), {"remove": "1"}).status_code == 404
    assert client.post(reverse("member-update", args=["beta", b_membership.pk]), {"remove": "1"}).status_code == 404
    assert Membership.objects.for_institution(b.institution).filter(pk=b_membership.pk).exists()
    listed = {m.pk for m in client.get(members_url("alpha")).context["members"]}
    assert listed == set(Membership.objects.for_institution(a.institution).values_list("pk", flat=True))


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_admins_manage_members(client, tenant_a, role):
    client.force_login(getattr(tenant_a, role))
    assert client.get(members_url("alpha")).status_code == 403
    assert client.post(members_url("alpha"), {"username": "x", "role": "admin"}).status_code == 403
    assert not get_user_model().objects.filter(username="x").exists()
