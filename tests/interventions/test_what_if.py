"""The what-if panel recomputes risk through the real live model (trained here, ~15 s)."""

import json

import pytest
from django.urls import reverse

from audit.models import AccessAction, AccessEntry
from institutions.jobs import job_create
from institutions.models import JobKind
from interventions.models import RiskSnapshot
from predictions.models import LatestPrediction
from predictions.tasks import rescore_students
from students.models import Student

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def post_what_if(client, student, changes):
    return client.post(reverse("student-what-if", args=["alpha", student.pk]), json.dumps({"changes": changes}),
                       content_type="application/json")


def test_what_if_recomputes_risk_with_the_live_model_and_refuses_what_cannot_change(client, trained_a):
    a = trained_a
    job, _ = job_create(institution=a.institution, kind=JobKind.RESCORE, params={"full": True})
    rescore_students.apply(kwargs={"institution_id": a.institution.pk, "job_id": job.pk})
    # The finished rescore left a snapshot of the flagged workload for the dashboard.
    snapshot = RiskSnapshot.objects.for_institution(a.institution).get(job=job)
    latest = LatestPrediction.objects.for_institution(a.institution)
    assert snapshot.scored == latest.count() > 0
    assert sorted(snapshot.flagged_student_ids) == sorted(latest.filter(flagged=True).values_list("student_id",
                                                                                                 flat=True))
    student = Student.objects.for_institution(a.institution).get(pk=a.students[0].pk)  # 1 unit approved
    client.force_login(a.advisor)
    profile = client.get(reverse("student-detail", args=["alpha", student.pk]))
    assert b'id="what-if-form"' in profile.content and profile.context["factors"]
    assert {row["definition"].key for row in profile.context["what_if_rows"]} == {"units_approved",
                                                                                "tuition_up_to_date"}

    response = post_what_if(client, student, {"units_approved": 30, "tuition_up_to_date": True})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["risk_after"] < body["risk_before"]
    assert body["risk_before"] == pytest.approx(profile.context["latest"].risk, abs=1e-9)
    assert body["changes"] == {"units_approved": 30.0, "tuition_up_to_date": True}

    refused = post_what_if(client, student, {"gender": "m"})
    assert refused.status_code == 400 and "actionable" in refused.json()["message"]
    out_of_range = post_what_if(client, student, {"units_approved": 99})
    assert out_of_range.status_code == 400 and "units_approved" in out_of_range.json()["message"]
    assert post_what_if(client, student, {}).status_code == 400
    # Nothing was stored: the student's values are unchanged.
    student.refresh_from_db()
    assert student.features["units_approved"] == 1.0
    # The access log holds the one what-if that answered (the refused ones showed no risk).
    assert list(AccessEntry.objects.for_institution(a.institution).filter(action=AccessAction.WHAT_IF).values_list(
        "student_id", "actor_user_id")) == [(student.pk, a.advisor.pk)]

    client.force_login(a.viewer)
    assert post_what_if(client, student, {"units_approved": 30}).status_code == 403


def test_what_if_gives_the_factors_after_the_change_in_the_institutions_language(client, trained_a):
    a = trained_a
    a.institution.default_language = "pt"
    a.institution.save(update_fields=["default_language"])
    student = Student.objects.for_institution(a.institution).get(pk=a.students[0].pk)
    client.force_login(a.advisor)
    body = post_what_if(client, student, {"units_approved": 30, "tuition_up_to_date": True}).json()
    texts = [factor["text"] for factor in body["factors_after"]]
    assert texts and all(" o risco" in text or "tendo em conta" in text for text in texts), texts
    assert not any("risk" in text for text in texts)
    tuition = next(f for f in body["factors_after"] if f["feature"] == "tuition_up_to_date")
    assert tuition["display_value"] == "sim" and tuition["text"].startswith("Tuition up to date: sim — ")
