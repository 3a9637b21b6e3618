"""Scoring tells subscribed systems who became flagged and whose risk band changed."""

import pytest

from institutions.models import WebhookDelivery
from institutions.webhooks import webhook_endpoint_create
from predictions.models import LatestPrediction, PredictionSettings
from students.models import Student

from .conftest import rescore

pytestmark = pytest.mark.django_db


def _rescore(tenant, *, full=False):
    return rescore(tenant, full=full)[0]


def _deliveries(tenant, event):
    return list(WebhookDelivery.objects.for_institution(tenant.institution).filter(event=event))


def test_first_scoring_sends_one_flagged_event_per_flagged_student_and_no_band_changes(trained_a, tenant_b):
    webhook_endpoint_create(institution=trained_a.institution, url="http://127.0.0.1:9/hook",
                            events=["student.flagged", "student.risk_band_changed"])
    PredictionSettings.objects.for_institution(trained_a.institution).update(flag_rule="capacity", flag_capacity=5)
    job = _rescore(trained_a, full=True)

    flagged = LatestPrediction.objects.for_institution(trained_a.institution).filter(flagged=True)
    events = _deliveries(trained_a, "student.flagged")
    assert flagged.count() == 5
    assert sorted(d.payload["student_id"] for d in events) == sorted(flagged.values_list("student_id", flat=True))
    sample = events[0].payload
    student = Student.objects.for_institution(trained_a.institution).get(pk=sample["student_id"])
    assert sample["external_id"] == student.external_id and sample["job_id"] == job.pk and sample["flagged"]
    assert _deliveries(trained_a, "student.risk_band_changed") == []
    assert not WebhookDelivery.objects.for_institution(tenant_b.institution).exists()


def test_a_band_change_is_sent_once_with_the_previous_band_and_unchanged_students_send_nothing(trained_a):
    webhook_endpoint_create(institution=trained_a.institution, url="http://127.0.0.1:9/hook",
                            events=["student.risk_band_changed"])
    _rescore(trained_a, full=True)
    latest = LatestPrediction.objects.for_institution(trained_a.institution)
    # Move the band cut-offs so that exactly the students between them change band on the next run.
    settings = PredictionSettings.objects.for_institution(trained_a.institution).get()
    before = dict(latest.values_list("student_id", "band"))
    settings.band_high_from, settings.band_medium_from = 0.99, 0.98
    settings.save()
    _rescore(trained_a, full=True)
    after = dict(latest.values_list("student_id", "band"))
    moved = {sid for sid in after if before.get(sid) != after[sid]}
    events = _deliveries(trained_a, "student.risk_band_changed")
    assert moved, "the new cut-offs should move someone"
    assert {d.payload["student_id"] for d in events} == moved
    assert all(d.payload["previous_band"] == before[d.payload["student_id"]] for d in events)
    assert _deliveries(trained_a, "student.flagged") == []  # not subscribed

    _rescore(trained_a, full=True)  # nothing changes
    assert len(_deliveries(trained_a, "student.risk_band_changed")) == len(events)


def test_scoring_without_subscribers_creates_no_deliveries(trained_a):
    _rescore(trained_a, full=True)
    assert not WebhookDelivery.objects.for_institution(trained_a.institution).exists()
