"""Long lists page by keyset (cursor) (issue 17, item 8): a deep page reads no row before it.

Predictions are written directly (a model version, a job and one prediction per student), so a
list of thousands of rows is built in a second; the query plan of a deep page is read with
EXPLAIN ANALYZE: the rows the database touches, not a timing.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from institutions.api.pagination import Keyset
from institutions.models import Job, JobKind
from predictions.models import LatestPrediction, ModelVersion, Prediction
from students.models import Student

PAGE = "/api/v1/institutions/{slug}/predictions/"


def _predictions(tenant, count: int, *, tied_every: int = 5) -> list[int]:
    """``count`` current students with a latest prediction each; every ``tied_every`` share a risk
    (ties are what a keyset must break by the next column). Returns the student ids in rank order."""
    institution = tenant.institution
    students = Student.objects.for_institution(institution).bulk_create(
        [Student(institution=institution, external_id=f"K{index:05d}", features={}) for index in range(count)])
    version = ModelVersion.objects.for_institution(institution).create(number=1, artifact=b"{}", artifact_sha256="0")
    job = Job.objects.for_institution(institution).create(kind=JobKind.RESCORE)
    now = timezone.now()
    risks = [round(1 - (index // tied_every) / count, 6) for index in range(count)]
    predictions = Prediction.objects.for_institution(institution).bulk_create([
        Prediction(institution=institution, student=student, model_version=version, job=job, risk=risk, band="high",
                   base_value=0.0, input_fingerprint="f") for student, risk in zip(students, risks, strict=True)])
    LatestPrediction.objects.for_institution(institution).bulk_create([
        LatestPrediction(institution=institution, student=student, prediction=prediction, model_version=version,
                         risk=prediction.risk, band="high", input_fingerprint="f", rank=index + 1, scored_at=now)
        for index, (student, prediction) in enumerate(zip(students, predictions, strict=True))])
    return list(LatestPrediction.objects.for_institution(institution).order_by("-risk", "student_id")
                .values_list("student_id", flat=True))


def _walk(client, url: str) -> tuple[list[int], list[str]]:
    ids, links = [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [row["student"] for row in body["results"]]
        links.append(url)
        url = body["next"]
    return ids, links


def test_following_next_links_reads_every_prediction_once_in_rank_order_and_only_its_own(
    tenant_a, tenant_b, client_a, make_key, key_client,
):
    order_a = _predictions(tenant_a, 47)
    order_b = _predictions(tenant_b, 12)
    ids, links = _walk(client_a, PAGE.format(slug="alpha") + "?page_size=5")
    assert ids == order_a  # ties broken by student id, nothing skipped or repeated
    assert len(links) == 10 and all("cursor=k." in link for link in links[1:])
    # B's key walks B's list only; A's cursor cannot reach B's list either.
    client_b = key_client(make_key(tenant_b)[1])
    assert _walk(client_b, PAGE.format(slug="beta") + "?page_size=5")[0] == order_b
    assert client_b.get(links[3]).status_code == 404  # A's URL: another institution looks missing


def test_previous_links_walk_back_through_the_same_pages(tenant_a, tenant_b, client_a):
    order = _predictions(tenant_a, 23)
    _predictions(tenant_b, 5)
    first = client_a.get(PAGE.format(slug="alpha") + "?page_size=4").json()
    assert first["count"] == 23 and first["previous"] is None  # page one: counted
    second = client_a.get(first["next"]).json()
    third = client_a.get(second["next"]).json()
    assert "count" not in third  # pages read by cursor are not counted
    back = client_a.get(third["previous"]).json()
    assert [row["student"] for row in back["results"]] == order[4:8]
    back_again = client_a.get(back["previous"]).json()
    assert [row["student"] for row in back_again["results"]] == order[0:4]
    assert back_again["previous"] is None


def test_page_numbers_work_for_the_first_pages_and_a_deep_one_says_to_follow_the_links(tenant_a, tenant_b, client_a,
                                                                                       settings):
    settings.API_MAX_OFFSET_PAGE = 3
    order = _predictions(tenant_a, 20)
    third = client_a.get(PAGE.format(slug="alpha") + "?page_size=2&page=3").json()
    assert [row["student"] for row in third["results"]] == order[4:6]
    following = client_a.get(third["next"]).json()  # a page number's next link is a cursor
    assert [row["student"] for row in following["results"]] == order[6:8]
    deep = client_a.get(PAGE.format(slug="alpha") + "?page=4")
    assert deep.status_code == 400 and deep.json()["code"] == "invalid"
    assert "follow the next link" in deep.json()["errors"]["page"][0]
    assert client_a.get(PAGE.format(slug="alpha") + "?page=last").status_code == 400  # as deep as the list


@pytest.mark.parametrize("cursor", ["k.", "k.bm90IGpzb24", "k.eyJ2IjpbMV0sInIiOmZhbHNlfQ",  # not JSON; one value
                                    "k.eyJ2IjpbIngiLDFdLCJyIjpmYWxzZX0",  # a risk that is no number
                                    "k.eyJ2IjpbMSwxXSwiciI6MX0"])  # "r" not a boolean
def test_a_hand_made_cursor_is_a_400_naming_the_cursor(tenant_a, tenant_b, client_a, cursor):
    _predictions(tenant_a, 3)
    response = client_a.get(PAGE.format(slug="alpha"), {"cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()["errors"]


def test_filters_hold_across_keyset_pages(tenant_a, tenant_b, client_a):
    order = _predictions(tenant_a, 30)
    LatestPrediction.objects.for_institution(tenant_a.institution).filter(student_id__in=order[::3]).update(
        flagged=True)
    ids, _ = _walk(client_a, PAGE.format(slug="alpha") + "?page_size=4&flagged=true")
    assert ids == order[::3]


def _plan_rows_read(sql: str, params) -> int:
    """The largest number of rows any scan node of the statement's plan actually read."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    most, nodes = 0, [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if "Scan" in node["Node Type"]:
            most = max(most, node["Actual Rows"] * node.get("Actual Loops", 1), node.get("Rows Removed by Filter", 0))
        nodes += node.get("Plans", [])
    return most


def test_page_one_thousand_reads_what_page_one_reads(tenant_a, tenant_b, client_a):
    rows = 6_000
    _predictions(tenant_a, rows)
    _predictions(tenant_b, 500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE predictions_latestprediction")
    # Page 1 of 5 rows, then walk to about page 1,000 by cursor without reading the pages between:
    # a cursor names a position, so the 1,000th page's cursor is made from the 4,995th row.
    keyset_rows = LatestPrediction.objects.for_institution(tenant_a.institution).order_by("-risk", "student_id")
    row = keyset_rows[4_994]
    token = Keyset.of(keyset_rows).encode([row.risk, row.student_id], reverse=False)

    def page_query(url, params):
        with CaptureQueriesContext(connection) as queries:
            response = client_a.get(url, params)
        assert response.status_code == 200
        selects = [q["sql"] for q in queries.captured_queries if "predictions_latestprediction" in q["sql"]
                   and q["sql"].lstrip().upper().startswith("SELECT") and "COUNT(" not in q["sql"].upper()]
        return response.json(), selects[-1]

    _first, first_sql = page_query(PAGE.format(slug="alpha"), {"page_size": 5})
    deep, deep_sql = page_query(PAGE.format(slug="alpha"), {"page_size": 5, "cursor": token})
    assert len(deep["results"]) == 5 and deep["results"][0]["student"] == keyset_rows[4_995].student_id
    assert " OFFSET " not in deep_sql.upper()
    first_read = _plan_rows_read(first_sql, None)
    deep_read = _plan_rows_read(deep_sql, None)
    assert deep_read <= max(50, 3 * first_read), (first_read, deep_read)  # not the 4,995 rows before it


def test_other_long_lists_page_by_cursor_too_and_students_keep_page_numbers(tenant_a, tenant_b, client_a):
    for tenant in (tenant_a, tenant_b):
        Job.objects.for_institution(tenant.institution).bulk_create(
            [Job(institution=tenant.institution, kind=JobKind.RESCORE) for _ in range(12)])
    expected = list(Job.objects.for_institution(tenant_a.institution).order_by("-created_at", "-id")
                    .values_list("id", flat=True))
    ids, links = [], []
    url = "/api/v1/institutions/alpha/jobs/?page_size=5"
    while url:
        body = client_a.get(url).json()
        ids += [job["id"] for job in body["results"]]
        links.append(url)
        url = body["next"]
    assert ids == expected and "cursor=k." in links[1]
    students = client_a.get("/api/v1/institutions/alpha/students/?page_size=2").json()
    assert students["count"] == len(tenant_a.students) and "page=2" in students["next"]
    assert "cursor" not in students["next"]
    assert client_a.get("/api/v1/institutions/alpha/students/?page=500&page_size=1").status_code == 404  # as before
