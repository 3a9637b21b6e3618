"""Finding one's way: the menu grouped by job and by role, a title per page, error pages in the
site's layout with a way back, and the navigation bar's student search (tenant-scoped,
need-to-know aware, in the access log like any student list)."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.views import defaults

from audit.models import AccessAction, AccessEntry
from audit.services import WITHHELD
from institutions.models import Role
from institutions.services import institution_set_need_to_know
from tests.factories import InstitutionFactory, MembershipFactory, StudentFactory, UserFactory
from workspace.navigation import NAVIGATION, PAGE_TITLES

pytestmark = pytest.mark.django_db


def title_of(response) -> str:
    return re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1).strip()


def menu_labels(response) -> list[str]:
    nav = response.content.decode().split('id="nav-main"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'class="(?:nav-link|dropdown-item|dropdown-header)[^"]*"[^>]*>([^<]+)<', nav)


def test_menu_is_grouped_by_job_and_shows_each_role_only_its_pages(client, tenants):
    a, _b = tenants
    client.force_login(a.admin)
    admin = menu_labels(client.get(reverse("dashboard", args=["alpha"])))
    for label in ("Work", "Dashboard", "My caseload", "Flagged students", "Interventions", "Students", "Insights",
                  "Risk model", "Administration", "Data", "Import data", "Members", "API keys", "Webhooks",
                  "Model settings", "Access log"):
        assert label in admin, label
    client.force_login(a.advisor)
    advisor = menu_labels(client.get(reverse("dashboard", args=["alpha"])))
    assert "Work" in advisor and "Students" in advisor and "Insights" in advisor
    assert not {"Administration", "Members", "API keys", "Import data"} & set(advisor)
    client.force_login(a.viewer)
    viewer = menu_labels(client.get(reverse("dashboard", args=["alpha"])))
    # A viewer's "Work" is the dashboard alone: a plain link, no menu of one.
    assert viewer[0] == "Dashboard" and "Work" not in viewer and "Students" not in viewer
    assert "Risk model" in viewer and "Administration" not in viewer


def test_the_current_page_is_marked_in_the_menu(client, tenant_a):
    client.force_login(tenant_a.admin)
    body = client.get(reverse("student-detail", args=["alpha", tenant_a.students[0].pk])).content.decode()
    assert re.search(r'href="/i/alpha/students/" aria-current="page">Students<', body)
    menu = body.split('id="nav-main"', 1)[1].split("</nav>", 1)[0]
    assert menu.count('aria-current="page"') == 1


def test_every_menu_entry_is_a_page_with_a_title_of_its_own():
    names = [item.url_name for group in NAVIGATION for _h, items in group.sections for item in items]
    assert len(names) == len(set(names))
    assert set(names) <= set(PAGE_TITLES)
    titles = [PAGE_TITLES[name] for name in names]
    assert len(titles) == len(set(titles))


def test_menu_pages_answer_with_distinct_titles_for_the_admin(client, tenants):
    a, _b = tenants
    client.force_login(a.admin)
    seen = {}
    for group in NAVIGATION:
        for _heading, items in group.sections:
            for item in items:
                response = client.get(reverse(item.url_name, args=["alpha"]))
                assert response.status_code == 200, item.url_name
                seen.setdefault(title_of(response), []).append(item.url_name)
    profile = client.get(reverse("student-detail", args=["alpha", a.students[0].pk]))
    assert title_of(profile) == f"{a.students[0].external_id} · Student profile · ALPHA University · dropout_platform"
    assert {title: names for title, names in seen.items() if len(names) > 1} == {}


def test_403_is_in_the_sites_layout_and_says_why_and_where_to_go(client, tenant_a):
    client.force_login(tenant_a.viewer)
    response = client.get(reverse("member-list", args=["alpha"]))
    assert response.status_code == 403
    body = response.content.decode()
    assert title_of(response) == "You cannot open this page · dropout_platform"
    assert 'id="nav-main"' in body and "Your role (Viewer) cannot do this." in body
    assert 'href="/i/alpha/"' in body and "ask one of your institution" in body


def test_404_is_in_the_sites_layout_and_alike_for_another_institutions_student(client, tenants):
    a, b = tenants
    client.force_login(a.advisor)
    theirs = client.get(reverse("student-detail", args=["alpha", b.students[0].pk]))
    missing = client.get(reverse("student-detail", args=["alpha", 999_999]))
    assert theirs.status_code == missing.status_code == 404
    assert title_of(theirs) == "Page not found · dropout_platform"
    assert theirs.content == missing.content
    assert 'href="/"' in theirs.content.decode() and "search box" in theirs.content.decode()
    # A URL that matches no page at all.
    nowhere = client.get("/no/such/page/")
    assert nowhere.status_code == 404 and "Page not found" in nowhere.content.decode()


def test_500_page_renders_in_the_layout_without_any_request_context():
    response = defaults.server_error(RequestFactory().get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "<title>Something went wrong · dropout_platform</title>" in body and 'href="/"' in body


def test_navigation_bar_search_box_goes_to_the_student_search_with_a_keyboard_shortcut(client, tenant_a):
    client.force_login(tenant_a.advisor)
    body = client.get(reverse("caseload", args=["alpha"])).content.decode()
    form = re.search(r'<form[^>]*role="search"[^>]*action="([^"]+)"', body)
    assert form and form.group(1) == reverse("student-list", args=["alpha"])
    assert 'id="site-search"' in body and 'aria-keyshortcuts="Control+K Meta+K"' in body
    client.force_login(tenant_a.viewer)  # a viewer sees no student: no search box
    assert 'id="site-search"' not in client.get(reverse("dashboard", args=["alpha"])).content.decode()


def test_search_finds_by_id_name_and_email_exact_id_first(client, tenant_a):
    a = tenant_a
    StudentFactory(institution=a.institution, external_id="S0011", name="Rita Sousa", email="rita@uni.example")
    client.force_login(a.advisor)
    url = reverse("student-list", args=["alpha"])
    assert [s.external_id for s in client.get(url, {"q": "s001"}).context["students"]][:1] == ["S001"]
    assert [s.external_id for s in client.get(url, {"q": "sousa"}).context["students"]] == ["S0011"]
    assert [s.external_id for s in client.get(url, {"q": "rita@uni"}).context["students"]] == ["S0011"]


def test_search_never_finds_another_institutions_students(client, tenants):
    a, b = tenants
    StudentFactory(institution=b.institution, external_id="B-ONLY-1", name="Beatriz Only", email="bea@beta.example")
    client.force_login(a.admin)
    url = reverse("student-list", args=["alpha"])
    for query in ("B-ONLY", "Beatriz", "bea@beta"):
        response = client.get(url, {"q": query})
        assert response.status_code == 200 and list(response.context["students"]) == []
        assert "B-ONLY-1" not in response.content.decode()
    # Nor through the other institution's URL, where A's admin is no member.
    assert client.get(reverse("student-list", args=["beta"]), {"q": "B-ONLY"}).status_code == 404


def test_search_under_need_to_know_finds_only_the_advisors_students_and_is_in_the_access_log(client, tenants):
    a, _b = tenants
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role=Role.ADVISOR)
    StudentFactory(institution=a.institution, external_id="S900", name="Not Mine", advisor=colleague)
    institution_set_need_to_know(institution=a.institution, enabled=True, actor=a.admin)
    client.force_login(a.advisor)
    response = client.get(reverse("student-list", args=["alpha"]), {"q": "S9"})
    assert list(response.context["students"]) == []
    assert "among the students you may see" in response.content.decode()
    mine = client.get(reverse("student-list", args=["alpha"]), {"q": "S00"})
    assert {s.external_id for s in mine.context["students"]} == {s.external_id for s in a.students}
    entries = list(AccessEntry.objects.for_institution(a.institution).filter(
        actor_user_id=a.advisor.pk, action=AccessAction.STUDENT_SEARCH).order_by("id"))
    assert [(e.filters, e.result_count) for e in entries] == [({"q": WITHHELD}, 0), ({"q": WITHHELD}, 6)]


def test_empty_student_list_says_why_and_what_to_do(client, tenants):
    # Beside A and B, an institution whose students are not imported yet.
    fresh = InstitutionFactory(slug="gamma", name="GAMMA University")
    admin, advisor = UserFactory(username="gamma-admin"), UserFactory(username="gamma-advisor")
    MembershipFactory(institution=fresh, user=admin, role=Role.ADMIN)
    MembershipFactory(institution=fresh, user=advisor, role=Role.ADVISOR)
    client.force_login(admin)
    body = client.get(reverse("student-list", args=["gamma"])).content.decode()
    assert "No students yet." in body and reverse("import-upload", args=["gamma"]) in body
    client.force_login(advisor)
    assert "an administrator of GAMMA University imports them" in client.get(
        reverse("student-list", args=["gamma"])).content.decode()
    client.force_login(tenants[0].admin)  # A still lists its own
    assert len(client.get(reverse("student-list", args=["alpha"])).context["students"]) == 6


def fresh_institution(slug: str = "gamma"):
    institution = InstitutionFactory(slug=slug, name=f"{slug.upper()} University")
    people = {}
    for role in (Role.ADMIN, Role.ADVISOR, Role.VIEWER):
        people[role] = UserFactory(username=f"{slug}-{role}")
        MembershipFactory(institution=institution, user=people[role], role=role)
    return institution, people


def test_dashboard_of_an_institution_with_no_enrolled_students_says_why_and_what_next(client, tenants):
    _institution, people = fresh_institution()
    client.force_login(people[Role.ADMIN])
    body = client.get(reverse("dashboard", args=["gamma"])).content.decode()
    assert 'id="dashboard-empty"' in body and "none have been imported yet" in body
    assert reverse("import-upload", args=["gamma"]) in body
    client.force_login(people[Role.VIEWER])
    body = client.get(reverse("dashboard", args=["gamma"])).content.decode()
    assert "An administrator of GAMMA University imports them." in body
    # A's dashboard, with enrolled students, says nothing of the kind.
    client.force_login(tenants[0].admin)
    assert 'id="dashboard-empty"' not in client.get(reverse("dashboard", args=["alpha"])).content.decode()


def test_dashboard_with_enrolled_but_unscored_students_says_there_is_no_live_model(client, tenants):
    a, _b = tenants  # the fixture's students are enrolled and never scored
    client.force_login(a.admin)
    body = client.get(reverse("dashboard", args=["alpha"])).content.decode()
    assert 'id="dashboard-unscored"' in body and "There is no live model" in body
    assert reverse("model-list", args=["alpha"]) in body


def test_empty_caseload_and_flagged_list_say_why_and_filters_say_to_widen(client, tenants):
    _institution, people = fresh_institution()
    client.force_login(people[Role.ADVISOR])
    assert "No students are assigned to you." in client.get(reverse("caseload", args=["gamma"])).content.decode()
    assert "No student is flagged now" in client.get(reverse("flagged-list", args=["gamma"])).content.decode()
    filtered = client.get(reverse("flagged-list", args=["gamma"]), {"band": "high"}).content.decode()
    assert "No students match these filters" in filtered
