"""Webhook endpoints and their delivery log over the API (scope ``webhooks``)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from ..selectors import access_webhook_delivery, access_webhook_endpoint
from ..webhooks import (
    WEBHOOK_EVENTS,
    WebhookUrlInvalid,
    clean_events,
    validate_webhook_url,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_send_ping,
)
from .base import InstitutionViewSet
from .filters import IdFilter


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(WEBHOOK_EVENTS)), allow_empty=False,
                                   min_length=1)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_url(self, value):
        try:
            return validate_webhook_url(value)
        except WebhookUrlInvalid as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_events(self, value):
        try:
            return clean_events(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def create(self, validated_data):
        return webhook_endpoint_create(
            institution=self.context["institution"], url=validated_data["url"], events=validated_data["events"],
            description=validated_data.get("description", ""),
        )

    def update(self, instance, validated_data):
        return webhook_endpoint_update(institution=self.context["institution"], endpoint=instance,
                                       data=validated_data)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """Returned on creation and rotation: the secret the receiver verifies signatures with."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.IntegerField(source="endpoint_id", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event_id", "event", "payload", "status", "attempts", "response_status",
                  "response_body", "error", "next_attempt_at", "delivered_at", "created_at", "updated_at"]
        read_only_fields = fields


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, InstitutionViewSet,
):
    """Where the institution receives events (student.flagged, student.risk_band_changed, job.finished)."""

    model = WebhookEndpoint
    serializer_class = WebhookEndpointSerializer
    read_capability = "manage_webhooks"
    write_capability = "manage_webhooks"

    def get_serializer_class(self):
        if self.action in ("create", "rotate_secret"):
            return WebhookEndpointWithSecretSerializer
        return WebhookEndpointSerializer

    def access_object(self, object_id):
        return access_webhook_endpoint(institution=self.institution, endpoint_id=object_id)

    def perform_destroy(self, instance):
        webhook_endpoint_delete(institution=self.institution, endpoint=instance)

    @extend_schema(request=None, responses=WebhookEndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, *args, **kwargs):
        endpoint = webhook_endpoint_rotate_secret(institution=self.institution, endpoint=self.get_object())
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def ping(self, request, *args, **kwargs):
        delivery = webhook_send_ping(institution=self.institution, endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint_id")
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event = django_filters.CharFilter()


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """The delivery log: every event sent to every endpoint, with attempts and the receiver's answer."""

    model = WebhookDelivery
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter
    read_capability = "manage_webhooks"
    write_capability = "manage_webhooks"

    def access_object(self, object_id):
        return access_webhook_delivery(institution=self.institution, delivery_id=object_id)
