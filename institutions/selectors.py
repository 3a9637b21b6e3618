"""Reads about institutions and memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .access import object_for_input_id
from .models import Institution, Job, JobKind, Membership, WebhookDelivery, WebhookEndpoint


def membership_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The user's own memberships: the one cross-institution read a user may make."""
    return Membership.objects.unscoped().filter(user=user).select_related("institution").order_by(
        "institution__name"
    )


def job_list(*, institution: Institution) -> QuerySet[Job]:
    return Job.objects.for_institution(institution).select_related("created_by")


def job_cancel_capability(job: Job) -> str:
    """What cancelling ``job`` takes: its kind's managing capability (data work or models)."""
    return "manage_models" if job.kind in (JobKind.RETRAIN, JobKind.RESCORE) else "manage_data"


def access_job(*, institution: Institution, job_id: int | str) -> Job:
    """The institution's job with ``job_id`` from input; another institution's job, a missing one
    and a malformed id raise the same Http404."""
    return object_for_input_id(job_list(institution=institution), job_id)


def access_webhook_endpoint(*, institution: Institution, endpoint_id: int | str) -> WebhookEndpoint:
    """The institution's webhook endpoint with ``endpoint_id`` from input (Http404 otherwise, alike)."""
    return object_for_input_id(WebhookEndpoint.objects.for_institution(institution), endpoint_id)


def access_webhook_delivery(*, institution: Institution, delivery_id: int | str) -> WebhookDelivery:
    """The institution's webhook delivery with ``delivery_id`` from input (Http404 otherwise, alike)."""
    return object_for_input_id(WebhookDelivery.objects.for_institution(institution), delivery_id)
