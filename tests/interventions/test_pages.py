import csv
import datetime
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from interventions.models import Flag, Intervention, InterventionStatus, InterventionType, RiskSnapshot
from students.models import Student
from tests.factories import (
    FlagFactory,
    InterventionFactory,
    InterventionTypeFactory,
    MembershipFactory,
    StudentFactory,
    UserFactory,
)

from .conftest import record_run

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()


@pytest.fixture
def world(scored):
    a, b = scored
    for t in (a, b):
        t.meeting = InterventionTypeFactory(institution=t.institution, key="meeting", label="Meeting")
        t.intervention = InterventionFactory(institution=t.institution, student=t.students[0],
                                             intervention_type=t.meeting, author=t.advisor,
                                             notes=f"{t.institution.slug} note")
        t.flag = FlagFactory(institution=t.institution, student=t.students[3], raised_by=t.advisor,
                             reason=f"{t.institution.slug} worry")
    return a, b


def get_pages(slug, t):
    return [
        reverse("institution-home", args=[slug]), reverse("dashboard", args=[slug]),
        reverse("flagged-list", args=[slug]), reverse("caseload", args=[slug]),
        reverse("student-detail", args=[slug, t.students[0].pk]),
        reverse("intervention-list", args=[slug]), reverse("intervention-edit", args=[slug, t.intervention.pk]),
        reverse("intervention-types", args=[slug]), reverse("effectiveness", args=[slug]),
    ]


def post_pages(slug, t):
    return [
        (reverse("caseload-assign", args=[slug]), {"advisor": t.admin.pk, "students": [t.students[0].pk]}),
        (reverse("student-what-if", args=[slug, t.students[0].pk]), {}),
        (reverse("intervention-create", args=[slug, t.students[0].pk]),
         {"intervention_type": t.meeting.pk, "date": str(TODAY)}),
        (reverse("intervention-edit", args=[slug, t.intervention.pk]), {"action": "close", "outcome": "resolved"}),
        (reverse("flag-create", args=[slug, t.students[0].pk]), {"reason": "x"}),
        (reverse("flag-resolve", args=[slug, t.flag.pk]), {"resolution": "x"}),
        (reverse("model-flag-review", args=[slug, t.students[0].pk]), {"resolution": "x"}),
        (reverse("intervention-types", args=[slug]), {"key": "x", "label": "X"}),
    ]


# --- tenancy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["admin", "advisor", "viewer"])
def test_member_of_other_institution_gets_404_on_every_workspace_page(client, world, role):
    a, b = world
    client.force_login(getattr(a, role))
    missing = client.get("/i/no-such-institution/dashboard/")
    for url in get_pages("beta", b):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.content == missing.content
    for url, data in post_pages("beta", b):
        assert client.post(url, data).status_code == 404, url
    assert Intervention.objects.for_institution(b.institution).count() == 1
    assert Flag.objects.for_institution(b.institution).get(pk=b.flag.pk).resolved_at is None
    b.intervention.refresh_from_db()
    assert b.intervention.status == InterventionStatus.OPEN


def test_other_institutions_objects_are_404_under_own_slug(client, world):
    a, b = world
    client.force_login(a.admin)
    assert client.get(reverse("student-detail", args=["alpha", b.students[0].pk])).status_code == 404
    assert client.get(reverse("intervention-edit", args=["alpha", b.intervention.pk])).status_code == 404
    assert client.post(reverse("intervention-edit", args=["alpha", b.intervention.pk]),
                       {"action": "close", "outcome": "resolved"}).status_code == 404
    assert client.post(reverse("flag-resolve", args=["alpha", b.flag.pk]), {"resolution": "x"}).status_code == 404
    assert client.post(reverse("flag-create", args=["alpha", b.students[0].pk]), {"reason": "x"}).status_code == 404
    assert client.post(reverse("intervention-create", args=["alpha", b.students[0].pk]),
                       {"intervention_type": a.meeting.pk, "date": str(TODAY)}).status_code == 404
    assert client.post(reverse("student-what-if", args=["alpha", b.students[0].pk]), "{}",
                       content_type="application/json").status_code == 404
    # An intervention of A's student with B's type id is refused, nothing written.
    client.post(reverse("intervention-create", args=["alpha", a.students[1].pk]),
                {"intervention_type": b.meeting.pk, "date": str(TODAY)})
    assert not Intervention.objects.for_institution(a.institution).filter(student=a.students[1]).exists()
    # Bulk assignment cannot reach B's students.
    client.post(reverse("caseload-assign", args=["alpha"]), {"advisor": a.admin.pk, "students": [b.students[0].pk]})
    assert Student.objects.for_institution(b.institution).get(pk=b.students[0].pk).advisor_id == b.advisor.pk


def test_lists_and_exports_never_show_the_other_institution(client, world):
    a, _b = world
    client.force_login(a.admin)
    flagged = client.get(reverse("flagged-list", args=["alpha"]))
    assert {s.pk for s in flagged.context["students"]} == {a.students[0].pk, a.students[1].pk, a.students[3].pk}
    interventions = client.get(reverse("intervention-list", args=["alpha"]))
    assert [i.pk for i in interventions.context["interventions"]] == [a.intervention.pk]
    assert b"beta note" not in interventions.content
    export = client.get(reverse("flagged-list", args=["alpha"]) + "?export=csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 4 and {r[0] for r in rows[1:]} == {"S001", "S002", "S004"}
    dashboard = client.get(reverse("dashboard", args=["alpha"]))
    assert dashboard.context["summary"]["flagged"] == 2 and dashboard.context["summary"]["scored"] == 4
    assert dashboard.context["summary"]["open_interventions"] == 1


# --- roles ------------------------------------------------------------------------------------

def test_viewer_sees_aggregates_but_no_students_or_notes(client, world):
    a, _ = world
    client.force_login(a.viewer)
    for name in ("dashboard", "effectiveness", "institution-home"):
        response = client.get(reverse(name, args=["alpha"]))
        assert response.status_code == 200, name
        assert a.students[0].name.encode() not in response.content
        assert b"alpha note" not in response.content
    for url in (reverse("flagged-list", args=["alpha"]), reverse("caseload", args=["alpha"]),
                reverse("intervention-list", args=["alpha"]), reverse("intervention-types", args=["alpha"]),
                reverse("student-detail", args=["alpha", a.students[0].pk]),
                reverse("intervention-edit", args=["alpha", a.intervention.pk])):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("intervention-create", args=["alpha", a.students[0].pk]),
                       {"intervention_type": a.meeting.pk, "date": str(TODAY)}).status_code == 403
    assert client.post(reverse("flag-create", args=["alpha", a.students[0].pk]), {"reason": "x"}).status_code == 403


def test_advisor_cannot_assign_caseloads_or_configure_types(client, world):
    a, _ = world
    client.force_login(a.advisor)
    assert client.post(reverse("caseload-assign", args=["alpha"]),
                       {"advisor": a.advisor.pk, "students": [a.students[4].pk]}).status_code == 403
    assert client.get(reverse("intervention-types", args=["alpha"])).status_code == 403
    response = client.get(reverse("flagged-list", args=["alpha"]))
    assert "assign_form" not in response.context


def test_advisor_home_is_the_caseload_and_admin_home_is_the_dashboard(client, world):
    a, _ = world
    client.force_login(a.advisor)
    response = client.get(reverse("institution-home", args=["alpha"]))
    assert response.status_code == 302 and response["Location"] == reverse("caseload", args=["alpha"])
    client.force_login(a.admin)
    response = client.get(reverse("institution-home", args=["alpha"]))
    assert response.status_code == 200 and "summary" in response.context


# --- caseload and flagged list ------------------------------------------------------------------

def test_caseload_puts_overdue_follow_ups_first(client, world):
    a, _ = world
    late = InterventionFactory(institution=a.institution, student=a.students[4], intervention_type=a.meeting,
                               author=a.advisor, date=TODAY - datetime.timedelta(days=10),
                               follow_up_date=TODAY - datetime.timedelta(days=2))
    client.force_login(a.advisor)
    response = client.get(reverse("caseload", args=["alpha"]))
    students = list(response.context["students"])
    assert students[0].pk == a.students[4].pk and students[0].has_overdue_follow_up
    assert [s.pk for s in students[1:3]] == [a.students[0].pk, a.students[1].pk]  # then by risk
    assert [i.pk for i in response.context["overdue"]] == [late.pk]


def test_admin_assigns_ticked_students_in_bulk_from_the_flagged_list(client, world):
    a, _ = world
    other = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=other, role="advisor")
    client.force_login(a.admin)
    response = client.post(reverse("caseload-assign", args=["alpha"]),
                           {"advisor": other.pk, "students": [a.students[0].pk, a.students[1].pk]})
    assert response.status_code == 302
    assert set(Student.objects.for_institution(a.institution).filter(advisor=other).values_list("pk", flat=True)) \
        == {a.students[0].pk, a.students[1].pk}
    client.force_login(other)
    caseload = client.get(reverse("caseload", args=["alpha"]))
    assert {s.pk for s in caseload.context["students"]} == {a.students[0].pk, a.students[1].pk}


def test_flagged_list_filters_by_band_advisor_open_intervention_and_contact(client, world):
    a, _ = world
    client.force_login(a.admin)
    url = reverse("flagged-list", args=["alpha"])

    def shown(**params):
        return {s.pk for s in client.get(url, params).context["students"]}

    assert shown(band="high") == {a.students[0].pk, a.students[1].pk}
    assert shown(band="low") == {a.students[3].pk}
    assert shown(open_intervention="yes") == {a.students[0].pk}
    assert shown(open_intervention="no") == {a.students[1].pk, a.students[3].pk}
    assert shown(no_contact_days=7) == {a.students[1].pk, a.students[3].pk}
    assert shown(advisor="none") == set()
    assert shown(advisor=str(a.advisor.pk)) == {a.students[0].pk, a.students[1].pk, a.students[3].pk}
    Student.objects.for_institution(a.institution).filter(pk=a.students[1].pk).update(program="Law")
    assert shown(program="Law") == {a.students[1].pk}
    order = [s.pk for s in client.get(url, {"sort": "risk"}).context["students"]]
    assert order == [a.students[0].pk, a.students[1].pk, a.students[3].pk]


def test_csv_export_neutralises_formulas(client, world):
    a, _ = world
    Student.objects.for_institution(a.institution).filter(pk=a.students[0].pk).update(name="=HYPERLINK(\"x\")")
    client.force_login(a.advisor)
    export = client.get(reverse("flagged-list", args=["alpha"]) + "?export=csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    names = {r[0]: r[1] for r in rows[1:]}
    assert names["S001"] == "'=HYPERLINK(\"x\")"
    assert rows[1][4] == "91.0"


def _add_scored_students(tenant, count, start):
    students = [StudentFactory(institution=tenant.institution, external_id=f"X{start + i:05d}", advisor=tenant.advisor)
                for i in range(count)]
    record_run(tenant.institution, {s: 0.6 + (i % 30) / 100 for i, s in enumerate(students)}, snapshot=False)
    for s in students[::3]:
        InterventionFactory(institution=tenant.institution, student=s, intervention_type=tenant.meeting,
                            author=tenant.advisor, follow_up_date=TODAY)
        FlagFactory(institution=tenant.institution, student=s, raised_by=tenant.advisor)
    return students


@pytest.mark.parametrize("page", ["flagged-list", "caseload", "dashboard", "intervention-list"])
def test_query_count_does_not_grow_with_the_list(client, world, page):
    a, _ = world
    client.force_login(a.advisor if page == "caseload" else a.admin)
    url = reverse(page, args=["alpha"])
    # Two runs on record, someone newly flagged: the same panels are filled in both measurements.
    record_run(a.institution, {a.students[3]: 0.8})
    client.get(url)  # warm up (e.g. default intervention types, snapshot catch-up)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    _add_scored_students(a, 45, 0)
    client.get(url)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_profile_query_count_does_not_grow_with_the_timeline(client, world):
    a, _ = world
    client.force_login(a.admin)
    url = reverse("student-detail", args=["alpha", a.students[0].pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(15):
        InterventionFactory(institution=a.institution, student=a.students[0], intervention_type=a.meeting,
                            author=a.admin)
        FlagFactory(institution=a.institution, student=a.students[0], raised_by=a.advisor)
    record_run(a.institution, {a.students[0]: 0.5})
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


# --- profile, interventions and flags -------------------------------------------------------

def test_profile_shows_risk_band_rank_factors_and_history(client, world):
    a, _ = world
    record_run(a.institution, {a.students[0]: 0.8, a.students[1]: 0.7, a.students[3]: 0.2, a.students[4]: 0.1})
    client.force_login(a.advisor)
    response = client.get(reverse("student-detail", args=["alpha", a.students[0].pk]))
    content = response.content.decode()
    assert "80.0%" in content and "High risk" in content and "Rank <strong>#1</strong>" in content
    assert "2 units approved: raises risk" in content and 'data-direction="lowers"' in content
    assert [round(row["risk"]) for row in response.context["history_data"]] == [91, 80]
    assert response.context["factors"][0]["width"] == 100.0 and response.context["factors"][1]["width"] == 44.4


def test_advisor_logs_an_intervention_from_the_profile_and_it_shows_on_the_timeline(client, world):
    a, _ = world
    client.force_login(a.advisor)
    url = reverse("student-detail", args=["alpha", a.students[1].pk])
    form = client.get(url).context["intervention_form"]
    assert [label for _pk, label in form.fields["intervention_type"].choices] == ["Meeting"]
    response = client.post(reverse("intervention-create", args=["alpha", a.students[1].pk]), {
        "intervention_type": a.meeting.pk, "date": str(TODAY), "notes": "Discussed the fees plan",
        "follow_up_date": str(TODAY + datetime.timedelta(days=7))})
    assert response.status_code == 302 and response["Location"].endswith("#timeline")
    timeline = client.get(url)
    assert b"Discussed the fees plan" in timeline.content
    assert [i.intervention_type_id for i in timeline.context["timeline"]] == [a.meeting.pk]


def test_bad_intervention_form_writes_nothing_and_says_why(client, world):
    a, _ = world
    client.force_login(a.advisor)
    response = client.post(reverse("intervention-create", args=["alpha", a.students[1].pk]), {
        "intervention_type": a.meeting.pk, "date": str(TODAY),
        "follow_up_date": str(TODAY - datetime.timedelta(days=3))}, follow=True)
    assert b"must not be before the intervention&#x27;s date" in response.content
    assert not Intervention.objects.for_institution(a.institution).filter(student=a.students[1]).exists()


def test_confidential_note_is_hidden_from_other_advisors_on_profile_and_list(client, world):
    a, _ = world
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role="advisor")
    InterventionFactory(institution=a.institution, student=a.students[0], intervention_type=a.meeting,
                        author=a.advisor, notes="Family bereavement", confidential=True)
    for user, visible in ((a.advisor, True), (a.admin, True), (colleague, False)):
        client.force_login(user)
        profile = client.get(reverse("student-detail", args=["alpha", a.students[0].pk]))
        listing = client.get(reverse("intervention-list", args=["alpha"]))
        assert (b"Family bereavement" in profile.content) is visible
        assert (b"Family bereavement" in listing.content) is visible


def test_author_edits_and_closes_but_a_colleague_cannot(client, world):
    a, _ = world
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role="advisor")
    url = reverse("intervention-edit", args=["alpha", a.intervention.pk])
    client.force_login(colleague)
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "close", "outcome": "resolved"}).status_code == 403
    client.force_login(a.advisor)
    assert client.post(url, {"action": "close", "outcome": ""}).status_code == 400
    response = client.post(url, {"action": "close", "outcome": "improved", "outcome_notes": "Attending again"})
    assert response.status_code == 302
    a.intervention.refresh_from_db()
    assert a.intervention.status == "closed" and a.intervention.outcome == "improved"


def test_flag_raised_by_hand_is_resolved_and_the_raiser_sees_how(client, world):
    a, _ = world
    client.force_login(a.advisor)
    client.post(reverse("flag-create", args=["alpha", a.students[4].pk]), {"reason": "Stopped coming to labs"})
    flag = Flag.objects.for_institution(a.institution).get(student=a.students[4])
    assert flag.raised_by == a.advisor and flag.source == "manual"
    flagged = client.get(reverse("flagged-list", args=["alpha"]))
    assert a.students[4].pk in {s.pk for s in flagged.context["students"]}
    client.force_login(a.admin)
    client.post(reverse("flag-resolve", args=["alpha", flag.pk]), {"resolution": "Lab timetable clash fixed"})
    client.force_login(a.advisor)
    caseload = client.get(reverse("caseload", args=["alpha"]))
    assert [f.pk for f in caseload.context["resolved_flags"]] == [flag.pk]
    assert b"Lab timetable clash fixed" in caseload.content


def test_admin_configures_intervention_types(client, world):
    a, b = world
    client.force_login(a.admin)
    url = reverse("intervention-types", args=["alpha"])
    assert client.post(url, {"key": "home_visit", "label": "Home visit"}).status_code == 302
    assert client.post(url, {"key": "home_visit", "label": "Again"}).status_code == 400
    response = client.get(url)
    labels = [t.label for t in response.context["types"]]
    assert "Home visit" in labels
    client.force_login(b.admin)
    assert "Home visit" not in [t.label for t in client.get(reverse("intervention-types", args=["beta"]))
                                .context["types"]]


# --- dashboard --------------------------------------------------------------------------------

def test_dashboard_reports_bands_distribution_new_flags_and_sharp_rises(client, world):
    a, _ = world
    s = a.students
    record_run(a.institution, {s[0]: 0.91, s[1]: 0.3, s[3]: 0.7, s[4]: 0.1})  # s[3] rose sharply, newly flagged
    client.force_login(a.admin)
    response = client.get(reverse("dashboard", args=["alpha"]))
    summary = response.context["summary"]
    assert summary["bands"] == {"high": 2, "medium": 1, "low": 1}
    assert sum(summary["histogram"]) == 4 and summary["histogram"][9] == 1 and summary["histogram"][7] == 1
    assert [row["flagged"] for row in summary["flagged_over_time"]] == [2, 2]
    assert response.context["newly_flagged"]["count"] == 1
    assert [x.pk for x in response.context["newly_flagged"]["students"]] == [s[3].pk]
    assert [row.student_id for row in response.context["sharp_rises"]["rows"]] == [s[3].pk]
    # Flagged: s0 (contacted today) and s3 (never contacted) -> one flagged with no contact.
    assert summary["flagged_no_contact"] == 1
    assert response.context["live_model"].number == 1


def test_dashboard_filters_by_program_and_cohort(client, world):
    a, _ = world
    Student.objects.for_institution(a.institution).filter(pk=a.students[0].pk).update(program="Law", cohort="2023")
    client.force_login(a.viewer)
    url = reverse("dashboard", args=["alpha"])
    law = client.get(url, {"program": "Law"}).context["summary"]
    assert law["scored"] == 1 and law["bands"]["high"] == 1 and law["open_interventions"] == 1
    nursing_2023 = client.get(url, {"program": "Nursing", "cohort": "2023"}).context["summary"]
    assert nursing_2023["scored"] == 0


def test_column_headers_sort_the_list_and_keep_the_filters(client, world):
    a, _ = world
    client.force_login(a.admin)
    url = reverse("flagged-list", args=["alpha"])
    response = client.get(url, {"band": "high"})
    link = response.context["sort_links"]["last_contact"]
    assert "band=high" in link and "sort=last_contact" in link
    assert f'href="{link.replace("&", "&amp;")}"'.encode() in response.content
    by_contact = client.get(url + link)
    # Never contacted first (students[1]), then the one contacted today (students[0]).
    assert [s.pk for s in by_contact.context["students"]] == [a.students[1].pk, a.students[0].pk]
    assert b'aria-sort="ascending"' in by_contact.content


def test_reviewing_the_models_flag_takes_the_student_off_the_list_until_the_next_score(client, world):
    a, b = world
    url = reverse("flagged-list", args=["alpha"])
    review = reverse("model-flag-review", args=["alpha", a.students[1].pk])
    client.force_login(a.advisor)
    assert client.post(review, {"resolution": ""}).status_code == 302
    assert not Flag.objects.for_institution(a.institution).filter(source="model").exists()
    client.post(review, {"resolution": "Talked it through; fees are being paid"})
    flag = Flag.objects.for_institution(a.institution).get(source="model")
    assert flag.student_id == a.students[1].pk and flag.resolved_by == a.advisor and "75.0%" in flag.reason
    assert a.students[1].pk not in {s.pk for s in client.get(url).context["students"]}
    profile = client.get(reverse("student-detail", args=["alpha", a.students[1].pk]))
    assert profile.context["model_flag_review"] == flag and b"fees are being paid" in profile.content
    # A student the model does not flag cannot be "reviewed"; nothing is written.
    client.post(reverse("model-flag-review", args=["alpha", a.students[3].pk]), {"resolution": "x"})
    assert Flag.objects.for_institution(a.institution).filter(source="model").count() == 1
    # The next score flags the student again: back on the list.
    record_run(a.institution, {a.students[1]: 0.8})
    assert a.students[1].pk in {s.pk for s in client.get(url).context["students"]}
    # B's list was never affected, and the viewer may not review.
    client.force_login(b.admin)
    assert b.students[1].pk in {s.pk for s in client.get(reverse("flagged-list", args=["beta"])).context["students"]}
    client.force_login(a.viewer)
    assert client.post(review, {"resolution": "x"}).status_code == 403


def test_bulk_assignment_needs_an_explicit_choice_and_nobody_unassigns(client, world):
    a, _ = world
    client.force_login(a.admin)
    ids = [a.students[0].pk, a.students[1].pk]
    client.post(reverse("caseload-assign", args=["alpha"]), {"advisor": "", "students": ids})
    assert Student.objects.for_institution(a.institution).filter(pk__in=ids, advisor=a.advisor).count() == 2
    client.post(reverse("caseload-assign", args=["alpha"]), {"advisor": "none", "students": ids})
    assert Student.objects.for_institution(a.institution).filter(pk__in=ids, advisor__isnull=True).count() == 2


def test_author_edits_notes_and_follow_up_on_the_edit_page(client, world):
    a, _ = world
    url = reverse("intervention-edit", args=["alpha", a.intervention.pk])
    client.force_login(a.advisor)
    page = client.get(url)
    assert page.status_code == 200 and page.context["form"].initial["notes"] == "alpha note"
    response = client.post(url, {"action": "edit", "intervention_type": a.meeting.pk, "date": str(TODAY),
                                 "notes": "Rescheduled to Friday", "follow_up_date": str(TODAY)})
    assert response.status_code == 302
    a.intervention.refresh_from_db()
    assert a.intervention.notes == "Rescheduled to Friday" and a.intervention.follow_up_date == TODAY
    bad = client.post(url, {"action": "edit", "intervention_type": a.meeting.pk, "date": str(TODAY),
                            "follow_up_date": str(TODAY - datetime.timedelta(days=1))})
    assert bad.status_code == 400 and "follow_up_date" in bad.context["form"].errors


# --- no writes on GET ---------------------------------------------------------------------------

WRITE_STATEMENT = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
# The one write a page that shows students makes: its access log entry (audit app, docs/privacy.md).
ACCESS_LOG_ENTRY = re.compile(r'^\s*INSERT INTO "audit_accessentry"', re.IGNORECASE)

SLUG_ONLY_PAGES_OF_OTHER_APPS = ["student-list", "feature-list", "import-upload", "model-list", "prediction-settings",
                                 "prediction-job-list", "member-list", "api-key-list", "webhook-list"]


def test_viewing_any_page_writes_nothing_even_before_types_and_snapshots_exist(client, world):
    """What a page used to create on first view (default intervention types, the risk snapshot of a
    finished rescore) is created when its cause happens; a GET only reads, in either institution."""
    a, b = world
    for t in (a, b):
        # What the old GET-time code reacted to: a finished rescore that nobody snapshotted.
        RiskSnapshot.objects.for_institution(t.institution).delete()
        record_run(t.institution, {t.students[0]: 0.95}, snapshot=False)
    # ... and, in A, an institution without any intervention type.
    Intervention.objects.for_institution(a.institution).delete()
    InterventionType.objects.for_institution(a.institution).delete()
    edit_page = reverse("intervention-edit", args=["alpha", a.intervention.pk])
    for slug, t in (("alpha", a), ("beta", b)):
        client.force_login(t.admin)
        urls = [url for url in get_pages(slug, t) if url != edit_page]
        urls += [reverse(name, args=[slug]) for name in SLUG_ONLY_PAGES_OF_OTHER_APPS]
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, follow=True)
            assert response.status_code == 200, url
            assert [q["sql"] for q in queries.captured_queries
                    if WRITE_STATEMENT.match(q["sql"]) and not ACCESS_LOG_ENTRY.match(q["sql"])] == [], url
    assert not RiskSnapshot.objects.unscoped().exists()
    assert not InterventionType.objects.for_institution(a.institution).exists()


def test_dashboard_before_any_snapshot_says_the_trend_starts_with_the_next_run(client, world):
    a, b = world
    RiskSnapshot.objects.for_institution(a.institution).delete()
    client.force_login(a.admin)
    response = client.get(reverse("dashboard", args=["alpha"]))
    assert response.status_code == 200
    assert response.context["summary"]["flagged_over_time"] == []
    assert response.context["newly_flagged"]["known"] is False
    assert b"Appears after the first scoring run." in response.content
    assert b'id="chart-over-time"' not in response.content
    assert RiskSnapshot.objects.for_institution(b.institution).exists()  # the other institution's stay
