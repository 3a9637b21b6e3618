"""Every id that comes from API input (a URL or a request body) resolves inside the caller's
institution: another institution's object is answered exactly as a missing one (404 in a URL,
400 with the same message in a body), and nothing is linked across institutions."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.urls import reverse

from institutions.models import Job, JobKind, WebhookDelivery, WebhookEndpoint
from interventions.models import Flag, Intervention
from predictions.models import ModelVersion
from students.models import Student
from tests.factories import FlagFactory, InterventionFactory, InterventionTypeFactory

pytestmark = pytest.mark.django_db

MISSING_ID = 987654321


def objects_of(tenant) -> dict[str, object]:
    """One object of each resource with a detail route, in ``tenant``'s institution."""
    institution = tenant.institution
    endpoint = WebhookEndpoint.objects.for_institution(institution).create(
        url="https://hooks.example.edu/in", events=["job.finished"], secret="s" * 64
    )
    return {
        "api-student-detail": tenant.students[0],
        "api-job-detail": Job.objects.for_institution(institution).create(kind=JobKind.IMPORT),
        "api-webhook-detail": endpoint,
        "api-webhook-delivery-detail": WebhookDelivery.objects.for_institution(institution).create(
            endpoint=endpoint, event_id=uuid.uuid4(), event="job.finished"
        ),
        "api-intervention-detail": InterventionFactory(institution=institution, student=tenant.students[0],
                                                       author=tenant.admin),
        "api-flag-detail": FlagFactory(institution=institution, student=tenant.students[0], raised_by=tenant.admin),
        "api-intervention-type-detail": InterventionTypeFactory(institution=institution),
        "api-feature-detail": tenant.features[0],
    }


def detail(client, tenant, name, pk):
    return client.get(reverse(name, args=[tenant.institution.slug, pk]))


@pytest.mark.parametrize("name", [
    "api-student-detail", "api-job-detail", "api-webhook-detail", "api-webhook-delivery-detail",
    "api-intervention-detail", "api-flag-detail", "api-intervention-type-detail", "api-feature-detail",
])
def test_detail_route_answers_another_institutions_id_like_a_missing_one(tenants, client_a, name):
    a, b = tenants
    own, theirs = objects_of(a)[name], objects_of(b)[name]

    assert detail(client_a, a, name, own.pk).status_code == 200
    missing = detail(client_a, a, name, MISSING_ID)
    assert missing.status_code == 404
    for pk in (theirs.pk, "abc", 10**30):
        response = detail(client_a, a, name, pk)
        assert response.status_code == 404 and response.content == missing.content


def test_model_version_number_of_another_institution_is_answered_like_a_missing_one(tenants, client_a):
    a, b = tenants
    ModelVersion.objects.for_institution(a.institution).create(number=1, artifact=b"{}", artifact_sha256="a" * 64)
    ModelVersion.objects.for_institution(b.institution).create(number=7, artifact=b"{}", artifact_sha256="b" * 64)
    slug = a.institution.slug

    assert client_a.get(reverse("api-model-version-detail", args=[slug, 1])).status_code == 200
    missing = client_a.get(reverse("api-model-version-detail", args=[slug, 8]))
    theirs = client_a.get(reverse("api-model-version-detail", args=[slug, 7]))
    assert missing.status_code == theirs.status_code == 404 and theirs.content == missing.content
    promote = client_a.post(reverse("api-model-version-promote", args=[slug, 7]), {})
    assert promote.status_code == 404 and promote.content == missing.content


def test_student_prediction_of_another_institutions_student_is_answered_like_a_missing_one(tenants, client_a):
    a, b = tenants
    for name in ("api-student-prediction", "api-student-prediction-history"):
        missing = client_a.get(reverse(name, args=[a.institution.slug, MISSING_ID]))
        theirs = client_a.get(reverse(name, args=[a.institution.slug, b.students[0].pk]))
        assert missing.status_code == theirs.status_code == 404 and theirs.content == missing.content


def post_intervention(client, tenant, **body):
    return client.post(reverse("api-intervention-list", args=[tenant.institution.slug]), {
        "date": datetime.date.today().isoformat(), "notes": "Met about the timetable", **body,
    })


def test_intervention_for_another_institutions_student_is_rejected_like_a_missing_one(tenants, client_a):
    a, b = tenants
    kind = InterventionTypeFactory(institution=a.institution)

    assert post_intervention(client_a, a, student=a.students[0].pk, intervention_type=kind.pk).status_code == 201
    missing = post_intervention(client_a, a, student=MISSING_ID, intervention_type=kind.pk)
    theirs = post_intervention(client_a, a, student=b.students[0].pk, intervention_type=kind.pk)
    assert missing.status_code == theirs.status_code == 400 and theirs.json() == missing.json()
    assert theirs.json()["errors"] == {"student": ["no such student in this institution"]}
    assert not Intervention.objects.for_institution(a.institution).filter(student_id=b.students[0].pk).exists()


def test_intervention_of_another_institutions_type_is_rejected_like_a_missing_one(tenants, client_a):
    a, b = tenants
    theirs_type = InterventionTypeFactory(institution=b.institution)
    missing = post_intervention(client_a, a, student=a.students[0].pk, intervention_type=MISSING_ID)
    theirs = post_intervention(client_a, a, student=a.students[0].pk, intervention_type=theirs_type.pk)
    assert missing.status_code == theirs.status_code == 400 and theirs.json() == missing.json()
    assert theirs.json()["errors"] == {"intervention_type": ["no such intervention type in this institution"]}


def test_intervention_cannot_be_moved_to_another_institutions_type(tenants, client_a):
    a, b = tenants
    intervention = InterventionFactory(institution=a.institution, student=a.students[0], author=a.admin)
    url = reverse("api-intervention-detail", args=[a.institution.slug, intervention.pk])
    response = client_a.patch(url, {"intervention_type": InterventionTypeFactory(institution=b.institution).pk})
    assert response.status_code == 400
    assert response.json()["errors"] == {"intervention_type": ["no such intervention type in this institution"]}
    intervention.refresh_from_db()
    assert intervention.intervention_type.institution_id == a.institution.pk


def test_flag_for_another_institutions_student_is_rejected_like_a_missing_one(tenants, client_a):
    a, b = tenants
    url = reverse("api-flag-list", args=[a.institution.slug])
    assert client_a.post(url, {"student": a.students[0].pk, "reason": "Missed tutorials"}).status_code == 201
    missing = client_a.post(url, {"student": MISSING_ID, "reason": "Missed tutorials"})
    theirs = client_a.post(url, {"student": b.students[0].pk, "reason": "Missed tutorials"})
    assert missing.status_code == theirs.status_code == 400 and theirs.json() == missing.json()
    assert not Flag.objects.for_institution(a.institution).filter(student_id=b.students[0].pk).exists()


def test_caseload_assignment_to_another_institutions_advisor_is_rejected_like_a_missing_one(tenants, client_a):
    a, b = tenants
    url = reverse("api-caseload-assignment", args=[a.institution.slug])
    students = [a.students[0].pk]
    missing = client_a.post(url, {"advisor": MISSING_ID, "students": students})
    theirs = client_a.post(url, {"advisor": b.advisor.pk, "students": students})
    assert missing.status_code == theirs.status_code == 400 and theirs.json() == missing.json()
    assert theirs.json()["errors"] == {"advisor": ["no such advisor in this institution"]}
    assert Student.objects.for_institution(a.institution).get(pk=a.students[0].pk).advisor_id == a.advisor.pk
    assert client_a.post(url, {"advisor": a.admin.pk, "students": students}).status_code == 200
