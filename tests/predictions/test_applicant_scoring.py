"""Scoring applicants: the page, the file and the API score records with the live model exactly as
a rescore scores a student with the same values, refuse what the schema does not allow (protected
attributes above all), store nothing, and write one access-log entry without any value."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AccessAction, AccessEntry
from institutions.api_keys import api_key_create
from predictions.models import LatestPrediction
from predictions.services.applicant_scoring import MAX_FILE_ROWS, MAX_RECORDS_PER_REQUEST
from students.models import Outcome, Student

from .conftest import rescore

pytestmark = pytest.mark.django_db

PAGE = "applicant-score"


def page_url(slug="alpha"):
    return reverse(PAGE, args=[slug])


def api_url(slug="alpha"):
    return reverse("api-applicant-score", kwargs={"institution_slug": slug})


def scoring_entries(institution):
    return list(AccessEntry.objects.for_institution(institution).filter(action__in=[
        AccessAction.APPLICANT_SCORE, AccessAction.APPLICANT_BATCH_SCORE, AccessAction.API_APPLICANT_SCORE]))


def entry_text(entry) -> str:
    return json.dumps({"filters": entry.filters, "actor": entry.actor_name, "student": entry.student_id,
                       "object": entry.object_id})


def student_scored_by_a_rescore(tenant, features: dict) -> LatestPrediction:
    """A current student with ``features``, scored by a real rescore run (what the profile shows)."""
    student = Student.objects.for_institution(tenant.institution).create(
        external_id="TWIN", outcome=Outcome.ENROLLED, features=features)
    rescore(tenant, full=True)
    return LatestPrediction.objects.for_institution(tenant.institution).select_related("prediction").get(
        student=student)


def csv_file(text: str, name: str = "applicants.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


# --- the page -------------------------------------------------------------------------------

@pytest.mark.slow
def test_advisor_scores_an_applicant_and_sees_the_risk_and_factors_the_profile_gives_the_same_values(
        client, trained_a):
    a = trained_a
    values = {"units_approved": 3.0, "tuition_up_to_date": False}
    twin = student_scored_by_a_rescore(a, values)
    before = Student.objects.for_institution(a.institution).count()
    client.force_login(a.advisor)

    form = client.get(page_url())
    assert form.status_code == 200
    fields = form.context["form"].fields
    assert {"feature_units_approved", "feature_tuition_up_to_date"} <= set(fields)
    assert "feature_gender" not in fields  # protected: never asked

    response = client.post(page_url(), {"ref": "A-17", "feature_units_approved": "3",
                                        "feature_tuition_up_to_date": "no"})
    assert response.status_code == 200
    score = response.context["score"]
    assert score.risk == pytest.approx(twin.risk, abs=1e-12)
    assert score.band == twin.band
    assert [f["text"] for f in score.factors] == [f["text"] for f in twin.prediction.factors]
    assert [f["points"] for f in score.factors] == pytest.approx([f["points"] for f in twin.prediction.factors])
    body = response.content.decode()
    assert 'id="risk-value"' in body and f"{100 * twin.risk:.1f}%" in body
    assert twin.prediction.factors[0]["text"] in body and 'id="risk-breakdown"' in body

    # Nothing stored but the entry: who, the model version, one record; no value, no reference.
    assert Student.objects.for_institution(a.institution).count() == before
    [entry] = scoring_entries(a.institution)
    assert (entry.action, entry.actor_user_id, entry.result_count, entry.student_id) == (
        AccessAction.APPLICANT_SCORE, a.advisor.pk, 1, None)
    assert entry.filters == {"model_version": a.version.number}
    assert "A-17" not in entry_text(entry) and "units_approved" not in entry_text(entry)


def test_a_bad_value_gets_its_own_message_on_its_field_and_nothing_is_scored(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(page_url(), {"feature_units_approved": "31", "feature_tuition_up_to_date": "maybe"})
    assert response.status_code == 200 and "score" not in response.context
    errors = response.context["form"].errors
    assert "31 is outside the valid range 0 to 30" in errors["feature_units_approved"][0]
    assert "expected yes/no" in errors["feature_tuition_up_to_date"][0]
    assert scoring_entries(tenant_a.institution) == []


def test_the_page_says_there_is_no_live_model_instead_of_failing(client, tenant_a):
    client.force_login(tenant_a.advisor)
    page = client.get(page_url())
    assert page.status_code == 200 and b'id="no-live-model"' in page.content
    response = client.post(page_url(), {"feature_units_approved": "3"})
    assert response.status_code == 200
    assert "no live model" in response.context["scoring_error"]
    assert scoring_entries(tenant_a.institution) == []


def test_viewers_cannot_score_and_another_institutions_members_get_404(client, tenant_a, tenant_b):
    client.force_login(tenant_a.viewer)
    assert client.get(page_url()).status_code == 403
    assert client.post(page_url(), {"feature_units_approved": "3"}).status_code == 403
    client.force_login(tenant_b.admin)
    assert client.get(page_url()).status_code == 404
    assert client.post(page_url(), {"feature_units_approved": "3"}).status_code == 404
    assert client.post(page_url(), {"action": "file", "file": csv_file("ref,units_approved\nx,3\n")}).status_code \
        == 404
    assert client.get(page_url("beta")).status_code == 200


def test_the_menu_links_the_page_for_advisors_and_administrators_only(client, tenant_a):
    for user, shown in ((tenant_a.admin, True), (tenant_a.advisor, True), (tenant_a.viewer, False)):
        client.force_login(user)
        assert (page_url().encode() in client.get(reverse("dashboard", args=["alpha"])).content) is shown


# --- the file -------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_file_of_applicants_is_scored_to_a_csv_download_with_the_profiles_risks(client, trained_a):
    a = trained_a
    twin = student_scored_by_a_rescore(a, {"units_approved": 3.0, "tuition_up_to_date": False})
    client.force_login(a.admin)
    # Import conventions: a semicolon file, a feature named by its label, a blank cell (not recorded).
    text = "ref;Units approved;tuition_up_to_date\nA-1;3;no\nA-2;25;yes\nA-3;;yes\n"
    response = client.post(page_url(), {"action": "file", "file": csv_file(text)})
    assert response.status_code == 200 and response.streaming
    assert "applicant-scores.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["ref"] for row in rows] == ["A-1", "A-2", "A-3"]
    assert rows[0]["risk_percent"] == f"{100 * twin.risk:.1f}" and rows[0]["band"] == twin.band
    assert rows[0]["factor_1"] == twin.prediction.factors[0]["text"]
    assert float(rows[1]["risk_percent"]) < float(rows[0]["risk_percent"])
    assert {row["model_version"] for row in rows} == {str(a.version.number)}
    [entry] = scoring_entries(a.institution)
    assert (entry.action, entry.result_count, entry.filters) == (
        AccessAction.APPLICANT_BATCH_SCORE, 3, {"model_version": a.version.number})
    assert "A-1" not in entry_text(entry)


@pytest.mark.slow
def test_a_file_with_bad_values_lists_every_problem_by_line_and_column_and_scores_nothing(client, trained_a):
    client.force_login(trained_a.admin)
    text = "ref,units_approved,tuition_up_to_date\nA-1,31,yes\n,3,perhaps\nA-1,2,no\n"
    response = client.post(page_url(), {"action": "file", "file": csv_file(text)})
    assert not getattr(response, "streaming", False)
    problems = [(p.row, p.column, p.reason) for p in response.context["file_problems"]]
    assert (2, "units_approved", "31 is outside the valid range 0 to 30") in problems
    assert [p[:2] for p in problems if p[0] == 3] == [(3, "ref"), (3, "tuition_up_to_date")]
    assert (4, "ref", "appears twice in this file") in problems
    assert response.context["file_problem_count"] == 4
    assert scoring_entries(trained_a.institution) == []


def test_a_file_with_a_protected_or_unknown_column_is_refused_whole(client, tenant_a):
    client.force_login(tenant_a.advisor)
    response = client.post(page_url(), {"action": "file",
                                         "file": csv_file("ref,units_approved,gender,shoe_size\nA-1,3,f,44\n")})
    [message] = response.context["file_form"].errors["file"]
    assert "protected attributes" in message and "gender" in message and "shoe_size" in message
    assert scoring_entries(tenant_a.institution) == []


def test_a_file_larger_than_the_limit_is_refused_with_the_limit(client, tenant_a, settings):
    client.force_login(tenant_a.advisor)
    rows = "".join(f"A-{i},3\n" for i in range(MAX_FILE_ROWS + 1))
    response = client.post(page_url(), {"action": "file", "file": csv_file("ref,units_approved\n" + rows)})
    [message] = response.context["file_form"].errors["file"]
    assert f"{MAX_FILE_ROWS:,}" in message
    huge = csv_file("ref,units_approved\n" + "A,3," + "x" * (2 * 1024 * 1024) + "\n")
    [message] = client.post(page_url(), {"action": "file", "file": huge}).context["file_form"].errors["file"]
    assert "at most 2 MB" in message


def test_a_file_without_a_live_model_gets_the_message(client, tenant_a):
    client.force_login(tenant_a.advisor)
    response = client.post(page_url(), {"action": "file", "file": csv_file("ref,units_approved\nA-1,3\n")})
    assert "no live model" in response.context["file_form"].errors["file"][0]


# --- the API --------------------------------------------------------------------------------

@pytest.mark.slow
def test_api_scores_records_with_the_risk_band_and_factors_a_student_with_those_values_gets(api_client, trained_a):
    a = trained_a
    twin = student_scored_by_a_rescore(a, {"units_approved": 3.0, "tuition_up_to_date": False})
    _key, raw = api_key_create(institution=a.institution, name="Admissions", scopes=["predictions:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.post(api_url(), {"records": [
        {"ref": "A-1", "features": {"units_approved": 3, "tuition_up_to_date": False}},
        {"ref": "A-2", "features": {"units_approved": "25", "tuition_up_to_date": None}}]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version"] == a.version.number
    first = body["results"][0]
    assert (first["ref"], first["band"], first["model_version"]) == ("A-1", twin.band, a.version.number)
    assert first["risk"] == pytest.approx(twin.risk, abs=1e-12)
    assert [f["contribution"] for f in first["factors"]] == pytest.approx(
        [f["contribution"] for f in twin.prediction.factors])
    assert [f["points"] for f in first["factors"]] == pytest.approx([f["points"] for f in twin.prediction.factors])
    [entry] = scoring_entries(a.institution)
    assert (entry.action, entry.api_key_id, entry.result_count) == (AccessAction.API_APPLICANT_SCORE, _key.pk, 2)
    assert "A-1" not in entry_text(entry) and "units_approved" not in entry_text(entry)


def test_api_refuses_bad_records_per_record_and_field_and_scores_nothing(api_client, tenant_a):
    _key, raw = api_key_create(institution=tenant_a.institution, name="Admissions", scopes=["predictions:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.post(api_url(), {"records": [
        {"ref": "ok", "features": {"units_approved": 3}},
        {"ref": "A-2", "features": {"gender": "f", "shoe_size": 44, "units_approved": 31}},
        {"ref": "A-3", "features": {"units_approved": "three", "tuition_up_to_date": [True]}},
        {"features": {}}]}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1", "2", "3"}
    assert "protected attribute" in errors["1"]["features"]["gender"]
    assert "unknown feature" in errors["1"]["features"]["shoe_size"]
    assert "31 is outside the valid range 0 to 30" in errors["1"]["features"]["units_approved"]
    assert "not a plain decimal number" in errors["2"]["features"]["units_approved"]
    assert "one value" in errors["2"]["features"]["tuition_up_to_date"]
    assert "required" in errors["3"]["ref"][0]
    assert scoring_entries(tenant_a.institution) == []


def test_api_refuses_more_than_a_thousand_records(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    records = [{"ref": f"A-{i}", "features": {"units_approved": 1}} for i in range(MAX_RECORDS_PER_REQUEST + 1)]
    response = api_client.post(api_url(), {"records": records}, format="json")
    assert response.status_code == 400
    assert f"at most {MAX_RECORDS_PER_REQUEST} records" in response.json()["errors"]["records"][0]


def test_api_answers_409_without_a_live_model(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.advisor)
    response = api_client.post(api_url(), {"records": [{"ref": "A-1", "features": {"units_approved": 1}}]},
                               format="json")
    assert response.status_code == 409 and response.json()["code"] == "no_live_model"


def test_another_institutions_key_or_member_gets_404_and_keys_need_predictions_scope(api_client, tenant_a, tenant_b):
    body = {"records": [{"ref": "A-1", "features": {"units_approved": 1}}]}
    _key, other = api_key_create(institution=tenant_b.institution, name="B", scopes=["predictions:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    refused = api_client.post(api_url(), body, format="json")
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    api_client.credentials()
    api_client.force_authenticate(tenant_b.admin)
    assert api_client.post(api_url(), body, format="json").status_code == 404
    api_client.force_authenticate(tenant_a.viewer)
    assert api_client.post(api_url(), body, format="json").status_code == 403
    api_client.force_authenticate(None)
    _key, students_only = api_key_create(institution=tenant_a.institution, name="S", scopes=["students:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {students_only}")
    assert api_client.post(api_url(), body, format="json").status_code == 403


def test_the_page_reads_in_the_institutions_language(client, tenant_a, tenant_b):
    tenant_a.institution.default_language = "es"
    tenant_a.institution.save()
    tenant_b.institution.default_language = "pt"
    tenant_b.institution.save()
    client.force_login(tenant_a.advisor)
    spanish = client.get(page_url()).content.decode()
    assert "Puntuar a este solicitante" in spanish and "Score this applicant" not in spanish
    client.force_login(tenant_b.advisor)
    portuguese = client.get(page_url("beta")).content.decode()
    assert "Pontuar este candidato" in portuguese and "Ainda não há um modelo em produção" in portuguese


def test_features_known_only_after_enrolment_are_neither_asked_nor_accepted(client, api_client, tenant_a):
    from students.models import FeatureDefinition
    from students.stages import feature_stage_list

    stages = {stage.key: stage for stage in feature_stage_list(institution=tenant_a.institution)}
    FeatureDefinition.objects.for_institution(tenant_a.institution).create(
        key="grade_term_1", label="Term 1 grade", kind="numeric", min_value=0, max_value=20,
        known_from=stages["end_of_term_1"], position=9)
    client.force_login(tenant_a.advisor)
    fields = client.get(page_url()).context["form"].fields
    assert "feature_grade_term_1" not in fields and "feature_units_approved" in fields
    api_client.force_authenticate(tenant_a.advisor)
    response = api_client.post(api_url(), {"records": [{"ref": "A-1", "features": {"grade_term_1": 12}}]},
                               format="json")
    assert response.status_code == 400
    assert "known only from the stage End of term 1" in response.json()["errors"]["0"]["features"]["grade_term_1"]
    refused = client.post(page_url(), {"action": "file", "file": csv_file("ref,Term 1 grade\nA-1,12\n")})
    [message] = refused.context["file_form"].errors["file"]
    assert "known only after Enrolment" in message and "Term 1 grade" in message


def test_a_key_scoring_past_its_rate_gets_429(api_client, tenant_a):
    _key, raw = api_key_create(institution=tenant_a.institution, name="Admissions", scopes=["predictions:read"],
                               rate_per_minute=2)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"records": [{"ref": "A-1", "features": {"units_approved": 1}}]}
    statuses = [api_client.post(api_url(), body, format="json").status_code for _ in range(3)]
    assert statuses == [409, 409, 429]  # no live model here: each answered call still counts
