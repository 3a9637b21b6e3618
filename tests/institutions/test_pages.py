import pytest
from django.urls import reverse

from tests.factories import InstitutionFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def pages_of(tenant):
    slug = tenant.institution.slug
    return [
        reverse("institution-home", args=[slug]),
        reverse("student-list", args=[slug]),
        reverse("student-detail", args=[slug, tenant.students[0].pk]),
        reverse("feature-list", args=[slug]),
    ]


def test_login_page_logs_a_user_in_and_lands_on_their_institution(client, tenant_a):
    response = client.post(reverse("login"), {"username": "alpha-advisor", "password": "pw-for-tests"})
    assert response.status_code == 302
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("institution-home", args=["alpha"])


def test_logout_ends_the_session(client, tenant_a):
    client.force_login(tenant_a.advisor)
    client.post(reverse("logout"))
    response = client.get(reverse("institution-home", args=["alpha"]))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_user_of_several_institutions_gets_a_chooser(client, tenants):
    a, b = tenants
    MembershipFactory(institution=b.institution, user=a.advisor, role="viewer")
    client.force_login(a.advisor)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"ALPHA University" in response.content and b"BETA University" in response.content


def test_user_without_membership_is_told_and_sees_no_institution(client, tenants):
    client.force_login(UserFactory(username="loner"))
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"not a member of any institution" in response.content
    for url in pages_of(tenants[0]):
        assert client.get(url).status_code == 404


def test_superuser_is_not_silently_a_member_of_every_institution(client, tenants):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    for url in pages_of(tenants[0]):
        assert client.get(url).status_code == 404


@pytest.mark.parametrize("role", ["admin", "advisor", "viewer"])
def test_member_of_other_institution_gets_404_on_every_page(client, tenants, role):
    a, b = tenants
    client.force_login(getattr(a, role))
    missing = client.get("/i/no-such-institution/")
    for url in pages_of(b):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.content == missing.content


def test_student_of_other_institution_is_404_even_under_own_slug(client, tenants):
    a, b = tenants
    client.force_login(a.advisor)
    response = client.get(reverse("student-detail", args=["alpha", b.students[0].pk]))
    assert response.status_code == 404


def test_student_list_shows_only_own_institutions_students(client, tenants):
    a, _b = tenants
    InstitutionFactory(slug="gamma")
    client.force_login(a.advisor)
    response = client.get(reverse("student-list", args=["alpha"]))
    shown = {s.pk for s in response.context["students"]}
    assert shown == {s.pk for s in a.students}
    assert response.context["page_obj"].paginator.count == len(a.students)


def test_viewer_cannot_open_individual_students(client, tenant_a):
    client.force_login(tenant_a.viewer)
    assert client.get(reverse("student-list", args=["alpha"])).status_code == 403
    assert client.get(reverse("student-detail", args=["alpha", tenant_a.students[0].pk])).status_code == 403
    assert client.get(reverse("institution-home", args=["alpha"])).status_code == 200


def test_student_profile_highlights_out_of_range_values(client, tenant_a):
    student = tenant_a.students[0]
    student.features["units_approved"] = 99.0  # schema says 0..30
    student.save()
    client.force_login(tenant_a.advisor)
    response = client.get(reverse("student-detail", args=["alpha", student.pk]))
    assert b'class="out-of-range"' in response.content


def test_dashboard_counts_only_own_institution(client, tenants):
    a, _ = tenants
    client.force_login(a.viewer)
    response = client.get(reverse("institution-home", args=["alpha"]))
    assert response.context["counts"]["total"] == len(a.students)


def test_platform_admin_lists_every_institution_for_superusers_only(client, tenants):
    # The staff admin administers institutions, not students (tests/institutions/test_staff_admin_privacy.py).
    client.force_login(tenants[0].admin)
    assert client.get("/admin/institutions/institution/").status_code == 302
    client.force_login(UserFactory(username="staff", is_superuser=True, is_staff=True))
    response = client.get("/admin/institutions/institution/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == len(tenants)
    assert client.get("/admin/students/student/").status_code == 404
