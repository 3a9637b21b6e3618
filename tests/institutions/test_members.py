import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from institutions.models import Membership, Role
from students.models import Student

pytestmark = pytest.mark.django_db


def members_url(slug):
    return reverse("member-list", args=[slug])


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
    assert client.post(reverse("member-update", args=["alpha", 1]), {"role": "admin"}).status_code == 403
