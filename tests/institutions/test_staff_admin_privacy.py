"""Platform staff administer institutions, not students: a superuser browsing every page of the
staff admin (each registered model's list, search, add form and every object's change form)
never sees a seeded student's name, email, feature values, notes or flag reasons, though the
student appears in the import job, the webhook delivery, the change history and the predictions."""

from __future__ import annotations

import contextlib
import datetime

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from institutions.models import Job, JobKind, JobStatus, WebhookDelivery
from institutions.webhooks import webhook_endpoint_create
from interventions.models import Flag, Intervention
from interventions.services import flag_raise
from students.models import ChangeSource, StudentChange
from tests.factories import InterventionTypeFactory, StudentFactory, UserFactory
from tests.interventions.conftest import record_run

pytestmark = pytest.mark.django_db

NAME = "Zelda Quintessa Marlowe"
EMAIL = "zelda.q.marlowe@students.example"
UNITS = 13.579
NOTE = "Spoke about her mother's illness"
FLAG_REASON = "Missed every exam of the autumn term"
RESOLUTION = "Referred to counselling on Tuesday"


@pytest.fixture
def seeded(tenants):
    a, _b = tenants
    inst = a.institution
    student = StudentFactory(institution=inst, external_id="Z1", name=NAME, email=EMAIL, advisor=a.advisor,
                             features={"units_approved": UNITS, "tuition_up_to_date": True, "gender": "f"})
    record_run(inst, {student: 0.87})
    kind = InterventionTypeFactory(institution=inst, key="meeting", label="Meeting")
    Intervention.objects.for_institution(inst).create(student=student, intervention_type=kind, author=a.advisor,
                                                      date=datetime.date.today(), notes=NOTE, outcome_notes=NOTE)
    flag = flag_raise(institution=inst, student=student, reason=FLAG_REASON, raised_by=a.advisor)
    Flag.objects.for_institution(inst).filter(pk=flag.pk).update(resolution=RESOLUTION)
    StudentChange.objects.for_institution(inst).create(
        student=student, source=ChangeSource.IMPORT, created=True,
        changes={"name": ["", NAME], "email": ["", EMAIL], "features.units_approved": [None, UNITS]})
    Job.objects.for_institution(inst).create(
        kind=JobKind.IMPORT, status=JobStatus.SUCCEEDED, params={"rows": [{"name": NAME}]},
        result={"rows": 1, "errors": [{"row": 2, "column": "email", "value": EMAIL, "reason": "not an email"}],
                "changes": [{"external_id": "Z1", "field": "name", "old": "", "new": NAME}],
                "summary": f"{NAME} imported"})
    endpoint = webhook_endpoint_create(institution=inst, url="https://hooks.example.edu/x", events=["student.flagged"])
    WebhookDelivery.objects.for_institution(inst).create(
        endpoint=endpoint, event_id="00000000-0000-0000-0000-000000000001", event="student.flagged",
        payload={"student": {"name": NAME, "email": EMAIL}, "reason": FLAG_REASON},
        response_body=f"received {NAME}")
    return student


def admin_urls(model):
    info = (model._meta.app_label, model._meta.model_name)
    urls = [reverse(f"admin:{info[0]}_{info[1]}_changelist"),
            reverse(f"admin:{info[0]}_{info[1]}_changelist") + "?q=Zelda",
            reverse(f"admin:{info[0]}_{info[1]}_changelist") + "?q=zelda.q.marlowe"]
    with contextlib.suppress(NoReverseMatch):
        urls.append(reverse(f"admin:{info[0]}_{info[1]}_add"))
    for pk in model._base_manager.values_list("pk", flat=True)[:50]:
        urls.append(reverse(f"admin:{info[0]}_{info[1]}_change", args=[pk]))
    return urls


def test_superuser_sees_no_students_personal_values_on_any_admin_page(client, seeded):
    staff = UserFactory(username="platform-staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    secrets = [NAME, EMAIL, str(UNITS), NOTE, FLAG_REASON, RESOLUTION]
    pages = [reverse("admin:index")]
    pages += [reverse("admin:app_list", args=[app]) for app in {m._meta.app_label for m in admin.site._registry}]
    for model in admin.site._registry:
        pages += admin_urls(model)
    visited = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code in (200, 403), (url, response.status_code)
        body = response.content.decode()
        for secret in secrets:
            assert secret not in body, (url, secret)
        visited += response.status_code == 200
    # The student's own rows are nowhere to browse; the job and the delivery are, without values.
    registered = {m._meta.label for m in admin.site._registry}
    assert not registered & {"students.Student", "students.StudentChange", "interventions.Intervention",
                             "interventions.Flag", "predictions.Prediction", "predictions.LatestPrediction"}
    assert {"institutions.Job", "institutions.WebhookDelivery"} <= registered and visited > 20
    job = Job.objects.for_institution(seeded.institution).get(kind=JobKind.IMPORT)
    job_page = client.get(reverse("admin:institutions_job_change", args=[job.pk])).content.decode()
    assert "list of 1 (hidden)" in job_page and "<code>rows</code>: 1" in job_page
