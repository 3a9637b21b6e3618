"""Webhooks: signed deliveries to a real local receiver, retries with backoff, a visible log."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from institutions.jobs import job_create, job_fail, job_succeed
from institutions.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from institutions.webhooks import (
    DELIVERY_FAILED,
    WebhookUrlInvalid,
    retry_delay_seconds,
    validate_webhook_url,
    webhook_emit,
    webhook_endpoint_create,
    webhook_verify,
)


def _endpoint(tenant, receiver, events=("job.finished",)):
    return webhook_endpoint_create(institution=tenant.institution, url=receiver.url, events=list(events))


def _deliveries(tenant):
    return list(WebhookDelivery.objects.for_institution(tenant.institution).order_by("id"))


@pytest.mark.django_db
def test_job_finished_reaches_the_receiver_signed_and_is_logged(tenant_a, receiver,
                                                                django_capture_on_commit_callbacks):
    endpoint = _endpoint(tenant_a, receiver)
    job, _ = job_create(institution=tenant_a.institution, kind="rescore")
    with django_capture_on_commit_callbacks(execute=True):
        job_succeed(job, counts={"scored": 4})
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/dropout"
    assert webhook_verify(secret=endpoint.secret, body=request.body, timestamp=request.headers["X-Dropout-Timestamp"],
                          signature=request.headers["X-Dropout-Signature"])
    body = json.loads(request.body)
    assert body["event"] == "job.finished" and body["institution"] == "alpha"
    assert body["data"]["job"] | {"id": job.pk, "status": "succeeded", "counts": {"scored": 4}} == body["data"]["job"]
    [delivery] = _deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.response_status) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert str(delivery.event_id) == body["id"] == request.headers["X-Dropout-Event-Id"]


@pytest.mark.django_db
def test_failed_job_is_reported_too(tenant_a, receiver, django_capture_on_commit_callbacks):
    _endpoint(tenant_a, receiver)
    job, _ = job_create(institution=tenant_a.institution, kind="import")
    with django_capture_on_commit_callbacks(execute=True):
        job_fail(job, error="row 3: bad date")
    assert json.loads(receiver.requests[0].body)["data"]["job"]["error"] == "row 3: bad date"


@pytest.mark.django_db
def test_a_failing_receiver_is_retried_until_it_answers(tenant_a, receiver, settings,
                                                        django_capture_on_commit_callbacks):
    settings.WEBHOOK_EAGER_RETRIES = True  # in-process tasks ignore countdowns: run the retries inline
    receiver.statuses = [500, 503]
    _endpoint(tenant_a, receiver, events=["student.flagged"])
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(institution=tenant_a.institution, event="student.flagged", payload={"student_id": 1})
    assert len(receiver.requests) == 3
    assert len({r.headers["X-Dropout-Event-Id"] for r in receiver.requests}) == 1
    [delivery] = _deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.response_status) == (DeliveryStatus.SUCCEEDED, 3, 200)


@pytest.mark.django_db
def test_delivery_gives_up_after_max_attempts_and_records_why(tenant_a, receiver, settings,
                                                              django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_EAGER_RETRIES = True
    receiver.statuses = [500] * 10
    _endpoint(tenant_a, receiver, events=["student.risk_band_changed"])
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(institution=tenant_a.institution, event="student.risk_band_changed", payload={"band": "high"})
    assert len(receiver.requests) == 3
    [delivery] = _deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.error) == (DeliveryStatus.FAILED, 3, "HTTP 500")
    assert delivery.response_body == "receiver is down"


@pytest.mark.django_db
def test_in_process_mode_makes_one_attempt_and_schedules_the_next(tenant_a, receiver,
                                                                  django_capture_on_commit_callbacks):
    from django.utils import timezone

    receiver.statuses = [500]
    _endpoint(tenant_a, receiver, events=["student.flagged"])
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(institution=tenant_a.institution, event="student.flagged", payload={})
    assert len(receiver.requests) == 1  # the demo's request is not held up by retries
    [delivery] = _deliveries(tenant_a)
    assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 1
    assert 25 <= (delivery.next_attempt_at - timezone.now()).total_seconds() <= 31


def test_backoff_doubles_from_the_configured_base(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    assert [retry_delay_seconds(n) for n in range(1, 6)] == [30, 60, 120, 240, 480]


@pytest.mark.django_db
def test_unreachable_receiver_is_logged_as_a_connection_error(tenant_a, receiver, settings,
                                                              django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    endpoint = _endpoint(tenant_a, receiver)
    receiver.server.shutdown()
    receiver.server.server_close()
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(institution=tenant_a.institution, event="job.finished", payload={})
    [delivery] = _deliveries(tenant_a)
    assert delivery.status == DeliveryStatus.FAILED and delivery.error == DELIVERY_FAILED
    assert delivery.endpoint_id == endpoint.pk


@pytest.mark.django_db
def test_only_subscribed_active_endpoints_of_the_institution_receive(tenants, receiver,
                                                                     django_capture_on_commit_callbacks):
    a, b = tenants
    _endpoint(b, receiver)  # B listens for job.finished; A's jobs must never reach it
    paused = _endpoint(a, receiver)
    WebhookEndpoint.objects.for_institution(a.institution).filter(pk=paused.pk).update(is_active=False)
    _endpoint(a, receiver, events=["student.flagged"])
    job, _ = job_create(institution=a.institution, kind="rescore")
    with django_capture_on_commit_callbacks(execute=True):
        job_succeed(job)
    assert receiver.requests == []
    assert _deliveries(a) == [] and _deliveries(b) == []


@pytest.mark.django_db
def test_events_in_a_rolled_back_transaction_are_never_sent(tenant_a, receiver, django_capture_on_commit_callbacks):
    from django.db import transaction

    _endpoint(tenant_a, receiver, events=["student.flagged"])
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        webhook_emit(institution=tenant_a.institution, event="student.flagged", payload={})
        raise RuntimeError("the flag was not saved")
    assert receiver.requests == [] and _deliveries(tenant_a) == []


def test_signature_fails_for_a_changed_body_another_secret_or_an_old_timestamp():
    from institutions.webhooks import webhook_signature

    now = int(time.time())
    body = b'{"event":"job.finished"}'
    signature = webhook_signature(secret="s1", timestamp=now, body=body)
    assert webhook_verify(secret="s1", body=body, timestamp=str(now), signature=signature)
    assert not webhook_verify(secret="s1", body=body + b" ", timestamp=str(now), signature=signature)
    assert not webhook_verify(secret="s2", body=body, timestamp=str(now), signature=signature)
    old = now - 301
    assert not webhook_verify(secret="s1", body=body, timestamp=str(old),
                              signature=webhook_signature(secret="s1", timestamp=old, body=body))


def test_only_https_urls_are_accepted_except_loopback_when_allowed(settings):
    assert validate_webhook_url("https://sis.example.edu/hook") == "https://sis.example.edu/hook"
    for bad in ("http://sis.example.edu/hook", "ftp://x.example.edu/", "https://user:pw@x.example.edu/", "nope"):
        with pytest.raises(WebhookUrlInvalid):
            validate_webhook_url(bad)
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = False
    with pytest.raises(WebhookUrlInvalid):
        validate_webhook_url("http://127.0.0.1:8080/hook")


@pytest.mark.django_db
def test_private_addresses_are_refused_in_production(tenant_a, receiver, settings,
                                                     django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    _endpoint(tenant_a, receiver)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(institution=tenant_a.institution, event="job.finished", payload={})
    assert receiver.requests == []
    assert "127.0.0.1, a private or special-purpose address; refused" in _deliveries(tenant_a)[0].error


# --- API -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_key_registers_endpoint_sees_secret_once_and_pings_it(tenant_a, make_key, key_client, receiver,
                                                              django_capture_on_commit_callbacks):
    client = key_client(make_key(tenant_a, scopes=["webhooks:write"])[1])
    response = client.post(reverse("api-webhook-list", args=["alpha"]),
                           {"url": receiver.url, "events": ["job.finished"]}, format="json")
    assert response.status_code == 201, response.json()
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    detail = client.get(reverse("api-webhook-detail", args=["alpha", response.json()["id"]])).json()
    assert "secret" not in detail
    with django_capture_on_commit_callbacks(execute=True):
        ping = client.post(reverse("api-webhook-ping", args=["alpha", detail["id"]]))
    assert ping.status_code == 202
    request = receiver.requests[0]
    assert webhook_verify(secret=secret, body=request.body, timestamp=request.headers["X-Dropout-Timestamp"],
                          signature=request.headers["X-Dropout-Signature"])
    log = client.get(reverse("api-webhook-delivery-list", args=["alpha"])).json()["results"]
    assert [(row["event"], row["status"]) for row in log] == [("ping", "succeeded")]


@pytest.mark.django_db
def test_api_rejects_plain_http_and_unknown_events(tenant_a, client_a):
    response = client_a.post(reverse("api-webhook-list", args=["alpha"]),
                             {"url": "http://sis.example.edu/h", "events": ["student.deleted"]}, format="json")
    assert response.status_code == 400
    assert {"url", "events"} <= set(response.json()["errors"])


@pytest.mark.django_db
def test_webhooks_need_the_webhooks_scope(tenant_a, make_key, key_client):
    client = key_client(make_key(tenant_a, scopes=["students:write"])[1])
    assert client.get(reverse("api-webhook-list", args=["alpha"])).status_code == 403
    assert client.get(reverse("api-webhook-delivery-list", args=["alpha"])).status_code == 403


@pytest.mark.django_db
def test_key_of_a_cannot_see_or_touch_bs_endpoints_or_deliveries(tenants, client_a, receiver,
                                                                 django_capture_on_commit_callbacks):
    _a, b = tenants
    endpoint_b = _endpoint(b, receiver)
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_b] = webhook_emit(institution=b.institution, event="job.finished", payload={})
    assert client_a.get(reverse("api-webhook-list", args=["alpha"])).json()["results"] == []
    assert client_a.get(reverse("api-webhook-delivery-list", args=["alpha"])).json()["results"] == []
    for method in ("get", "patch", "delete"):
        url = reverse("api-webhook-detail", args=["alpha", endpoint_b.pk])
        assert getattr(client_a, method)(url, {"url": "https://evil.example/"}, format="json").status_code == 404
    assert client_a.post(reverse("api-webhook-rotate-secret", args=["alpha", endpoint_b.pk])).status_code == 404
    assert client_a.get(reverse("api-webhook-delivery-detail", args=["alpha", delivery_b.pk])).status_code == 404
    endpoint_b.refresh_from_db()
    assert endpoint_b.url == receiver.url


# --- Pages -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_admin_registers_endpoint_and_reads_the_delivery_log(client, tenant_a, receiver,
                                                             django_capture_on_commit_callbacks):
    client.force_login(tenant_a.admin)
    response = client.post(reverse("webhook-list", args=["alpha"]),
                           {"url": receiver.url, "events": ["job.finished", "student.flagged"]})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.for_institution(tenant_a.institution).get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("webhook-action", args=["alpha", endpoint.pk, "ping"]))
    page = client.get(reverse("webhook-detail", args=["alpha", endpoint.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "delivered" in html and endpoint.secret in html
    old_secret = endpoint.secret
    client.post(reverse("webhook-action", args=["alpha", endpoint.pk, "rotate-secret"]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret


@pytest.mark.django_db
def test_webhook_form_refuses_plain_http(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(reverse("webhook-list", args=["alpha"]),
                           {"url": "http://sis.example.edu/h", "events": ["job.finished"]})
    assert response.status_code == 400 and "https://" in response.content.decode()
    assert not WebhookEndpoint.objects.for_institution(tenant_a.institution).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_admins_manage_webhooks(client, tenant_a, receiver, role):
    endpoint = _endpoint(tenant_a, receiver)
    client.force_login(getattr(tenant_a, role))
    assert client.get(reverse("webhook-list", args=["alpha"])).status_code == 403
    assert client.post(reverse("webhook-action", args=["alpha", endpoint.pk, "delete"])).status_code == 403


@pytest.mark.django_db
def test_admin_of_a_gets_404_on_bs_endpoint_pages(client, tenants, receiver):
    a, b = tenants
    endpoint_b = _endpoint(b, receiver)
    client.force_login(a.admin)
    assert client.get(reverse("webhook-detail", args=["alpha", endpoint_b.pk])).status_code == 404
    assert client.get(reverse("webhook-detail", args=["beta", endpoint_b.pk])).status_code == 404
    for action in ("ping", "rotate-secret", "toggle", "delete"):
        assert client.post(reverse("webhook-action", args=["alpha", endpoint_b.pk, action])).status_code == 404
    assert endpoint_b.url not in client.get(reverse("webhook-list", args=["alpha"])).content.decode()
    assert WebhookEndpoint.objects.for_institution(b.institution).filter(pk=endpoint_b.pk, is_active=True).exists()


# --- Real worker -----------------------------------------------------------------------------

@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_delivers_a_signed_event_to_the_receiver(celery_worker_process, tenant_a, receiver):
    endpoint = _endpoint(tenant_a, receiver)
    webhook_emit(institution=tenant_a.institution, event="job.finished", payload={"job": {"id": 1}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.requests:
        time.sleep(0.1)
    assert receiver.requests, "the worker never called the receiver"
    request = receiver.requests[0]
    assert webhook_verify(secret=endpoint.secret, body=request.body, timestamp=request.headers["X-Dropout-Timestamp"],
                          signature=request.headers["X-Dropout-Signature"])
    while time.monotonic() < deadline and _deliveries(tenant_a)[0].status != DeliveryStatus.SUCCEEDED:
        time.sleep(0.1)
    assert _deliveries(tenant_a)[0].status == DeliveryStatus.SUCCEEDED


@pytest.mark.django_db
def test_sweep_sends_deliveries_whose_task_never_reached_the_queue(tenant_a, receiver):
    from datetime import timedelta

    from django.utils import timezone

    from institutions.webhooks import webhook_dispatch_due

    endpoint = _endpoint(tenant_a, receiver)
    # What a broker outage leaves behind: a pending row whose task was never queued.
    stale = WebhookDelivery.objects.for_institution(tenant_a.institution).create(
        endpoint=endpoint, event_id="6f1c2b9e-8a6f-4c59-9d3e-1b2c3d4e5f60", event="job.finished", payload={})
    fresh = WebhookDelivery.objects.for_institution(tenant_a.institution).create(
        endpoint=endpoint, event_id="7f1c2b9e-8a6f-4c59-9d3e-1b2c3d4e5f60", event="job.finished", payload={})
    WebhookDelivery.objects.for_institution(tenant_a.institution).filter(pk=stale.pk).update(
        updated_at=timezone.now() - timedelta(minutes=5))
    assert webhook_dispatch_due() == 1
    assert [json.loads(r.body)["id"] for r in receiver.requests] == [str(stale.event_id)]
    fresh.refresh_from_db()
    assert fresh.status == DeliveryStatus.PENDING


@pytest.mark.django_db
def test_emitting_an_unknown_event_is_a_programming_error(tenant_a):
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhook_emit(institution=tenant_a.institution, event="student.deleted", payload={})
