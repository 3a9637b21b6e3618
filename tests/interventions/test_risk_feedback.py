"""Advisors' "this risk looks wrong" (issue 20, item 10): stored with the prediction and model
version it is about, counted per version on the model page, never changing a score; refused input
writes nothing; another institution's student, or one outside need-to-know, is a 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.models import Role
from institutions.scoping import institution_scope
from institutions.services import institution_set_need_to_know
from predictions.models import LatestPrediction, Prediction, RiskFeedback
from tests.factories import MembershipFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


def feedback_url(slug, student):
    return reverse("risk-feedback-create", args=[slug, student.pk])


def standing(institution):
    return sorted(LatestPrediction.objects.for_institution(institution).values_list(
        "student_id", "prediction_id", "risk", "band", "rank", "percentile", "flagged"))


def stored(institution):
    return list(RiskFeedback.objects.for_institution(institution).values_list("student_id", "reason", "note"))


def test_advisor_feedback_is_kept_with_the_risk_and_version_and_changes_no_score(client, scored):
    a, b = scored
    before, history = standing(a.institution), Prediction.objects.for_institution(a.institution).count()
    client.force_login(a.advisor)
    response = client.post(feedback_url("alpha", a.students[0]),
                           {"reason": "already_known", "note": "Met her last week about the fees"})
    assert response.status_code == 302 and response["Location"].endswith("#feedback")
    feedback = RiskFeedback.objects.for_institution(a.institution).get()
    latest = LatestPrediction.objects.for_institution(a.institution).get(student=a.students[0])
    assert (feedback.prediction_id, feedback.model_version_id, feedback.risk, feedback.author) == (
        latest.prediction_id, latest.model_version_id, 0.91, a.advisor)
    assert standing(a.institution) == before
    assert Prediction.objects.for_institution(a.institution).count() == history
    profile = client.get(reverse("student-detail", args=["alpha", a.students[0].pk])).content.decode()
    assert "Met her last week about the fees" in profile and "Already known" in profile
    assert stored(b.institution) == []


def test_model_page_counts_feedback_per_version_and_reason_of_its_own_institution_only(client, scored):
    a, b = scored
    client.force_login(a.advisor)
    client.post(feedback_url("alpha", a.students[0]), {"reason": "data_wrong", "note": "Fees were paid"})
    client.post(feedback_url("alpha", a.students[1]), {"reason": "data_wrong"})
    client.post(feedback_url("alpha", a.students[1]), {"reason": "other", "note": "Transferring next term"})
    client.force_login(a.admin)
    counts = dict(client.get(reverse("model-list", args=["alpha"])).context["feedback_counts"])
    assert counts[1]["total"] == 3 and counts[1]["students"] == 2
    assert {value: n for value, _label, n in counts[1]["by_reason"]} == {
        "already_known": 0, "data_wrong": 2, "factor_not_relevant": 0, "other": 1}
    client.force_login(b.admin)
    page = client.get(reverse("model-list", args=["beta"]))
    assert page.context["feedback_counts"] == [] and b'id="feedback-none"' in page.content


@pytest.mark.parametrize("data, message", [
    ({"reason": "looks_odd"}, "Choose what looks wrong"),
    ({"reason": "other", "note": "   "}, "Say in the note what looks wrong"),
    ({"reason": "data_wrong", "note": "x" * 2001}, "under 2,000 characters"),
    ({}, "Choose what looks wrong"),
])
def test_refused_feedback_writes_nothing_and_says_why(client, scored, data, message):
    a, _ = scored
    client.force_login(a.advisor)
    response = client.post(feedback_url("alpha", a.students[0]), data, follow=True)
    assert response.status_code == 200 and message in response.content.decode()
    assert stored(a.institution) == []


def test_feedback_on_a_student_without_a_risk_is_refused(client, scored):
    a, _ = scored
    client.force_login(a.advisor)
    response = client.post(feedback_url("alpha", a.students[2]), {"reason": "data_wrong"}, follow=True)
    assert "no risk yet" in response.content.decode() and stored(a.institution) == []


def test_advisor_of_other_institution_gets_404_on_feedback_and_writes_nothing(client, scored):
    a, b = scored
    client.force_login(b.advisor)
    missing = client.post(reverse("risk-feedback-create", args=["beta", 999_999]), {"reason": "data_wrong"})
    other = client.post(reverse("risk-feedback-create", args=["beta", a.students[0].pk]), {"reason": "data_wrong"})
    assert other.status_code == missing.status_code == 404 and other.content == missing.content
    assert client.post(feedback_url("alpha", a.students[0]), {"reason": "data_wrong"}).status_code == 404
    assert stored(a.institution) == stored(b.institution) == []


def test_viewer_cannot_send_feedback(client, scored):
    a, _ = scored
    client.force_login(a.viewer)
    assert client.post(feedback_url("alpha", a.students[0]), {"reason": "data_wrong"}).status_code == 403
    assert stored(a.institution) == []


def test_need_to_know_advisor_gets_404_for_a_student_outside_their_caseload(client, scored):
    a, _ = scored
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role=Role.ADVISOR)
    outsider = StudentFactory(institution=a.institution, external_id="O1", advisor=colleague)
    from tests.interventions.conftest import record_run
    record_run(a.institution, {outsider: 0.8, a.students[0]: 0.9})
    institution_set_need_to_know(institution=a.institution, enabled=True, actor=a.admin)
    client.force_login(a.advisor)
    assert client.post(feedback_url("alpha", outsider), {"reason": "data_wrong"}).status_code == 404
    assert client.post(feedback_url("alpha", a.students[0]), {"reason": "data_wrong"}).status_code == 302
    # The colleague, whose caseload it is, sees only feedback on their own students.
    client.force_login(colleague)
    profile = client.get(reverse("student-detail", args=["alpha", outsider.pk]))
    assert profile.status_code == 200 and list(profile.context["feedback"]) == []
    assert client.get(reverse("student-detail", args=["alpha", a.students[0].pk])).status_code == 404
    with institution_scope(a.institution):
        assert RiskFeedback.objects.count() == 1


def test_the_database_refuses_feedback_linking_another_institutions_prediction(scored):
    from django.db import IntegrityError, connection, transaction

    from institutions.db_roles import owner_session
    a, b = scored
    b_latest = LatestPrediction.objects.for_institution(b.institution).first()
    with owner_session(), pytest.raises(IntegrityError, match="same_institution"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        RiskFeedback.all_institutions.create(
            institution=a.institution, student=a.students[0], prediction_id=b_latest.prediction_id,
            model_version_id=b_latest.model_version_id, risk=0.5, reason="data_wrong")
