"""Webhook pages: register endpoints, read the delivery log, send a test event, redeliver."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from .models import WebhookDelivery, WebhookEndpoint
from .view_mixins import InstitutionPageMixin
from .webhook_forms import WebhookEndpointForm
from .webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_redeliver,
    webhook_send_ping,
)

DELIVERY_LOG_LENGTH = 100


class WebhookListView(InstitutionPageMixin, TemplateView):
    template_name = "institutions/webhooks.html"
    required_capability = "manage_webhooks"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", WebhookEndpointForm())
        context["endpoints"] = self.scoped(WebhookEndpoint).all()
        return context

    def post(self, request, *args, **kwargs):
        form = WebhookEndpointForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        endpoint = webhook_endpoint_create(
            institution=self.institution, url=form.cleaned_data["url"], events=form.cleaned_data["events"],
            description=form.cleaned_data["description"], created_by=request.user,
        )
        messages.success(request, _("Endpoint added. Use its signing secret to verify each request."))
        return redirect("webhook-detail", institution_slug=self.institution.slug, pk=endpoint.pk)


class WebhookDetailView(InstitutionPageMixin, TemplateView):
    template_name = "institutions/webhook_detail.html"
    required_capability = "manage_webhooks"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoint = get_object_or_404(self.scoped(WebhookEndpoint), pk=self.kwargs["pk"])
        context["endpoint"] = endpoint
        context.setdefault("form", WebhookEndpointForm(initial={
            "url": endpoint.url, "description": endpoint.description, "events": endpoint.events,
        }))
        context["deliveries"] = self.scoped(WebhookDelivery).filter(endpoint=endpoint)[:DELIVERY_LOG_LENGTH]
        return context

    def post(self, request, *args, **kwargs):
        endpoint = get_object_or_404(self.scoped(WebhookEndpoint), pk=kwargs["pk"])
        form = WebhookEndpointForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        webhook_endpoint_update(institution=self.institution, endpoint=endpoint, data=form.cleaned_data)
        messages.success(request, _("Endpoint saved."))
        return redirect("webhook-detail", institution_slug=self.institution.slug, pk=endpoint.pk)


class WebhookActionView(InstitutionPageMixin, View):
    """POST-only buttons on the endpoint page: ping, rotate-secret, toggle, delete, redeliver."""

    required_capability = "manage_webhooks"

    def post(self, request, *args, **kwargs):
        endpoint = get_object_or_404(self.scoped(WebhookEndpoint), pk=kwargs["pk"])
        action = kwargs["action"]
        if action == "ping":
            webhook_send_ping(institution=self.institution, endpoint=endpoint)
            messages.info(request, _("Test event queued; its result appears in the delivery log."))
        elif action == "rotate-secret":
            webhook_endpoint_rotate_secret(institution=self.institution, endpoint=endpoint)
            messages.warning(request, _("New signing secret: update the receiver now; the old one no longer signs."))
        elif action == "toggle":
            webhook_endpoint_update(institution=self.institution, endpoint=endpoint,
                                    data={"is_active": not endpoint.is_active})
            messages.info(request, _("Endpoint enabled.") if endpoint.is_active else _("Endpoint paused."))
        elif action == "delete":
            webhook_endpoint_delete(institution=self.institution, endpoint=endpoint)
            messages.success(request, _("Endpoint deleted."))
            return redirect("webhook-list", institution_slug=self.institution.slug)
        elif action == "redeliver":
            try:
                delivery_pk = int(request.POST.get("delivery", ""))
            except ValueError:
                raise Http404("Not found.") from None
            delivery = get_object_or_404(self.scoped(WebhookDelivery).filter(endpoint=endpoint), pk=delivery_pk)
            webhook_redeliver(institution=self.institution, delivery=delivery)
            messages.info(request, _("Event queued again."))
        else:
            raise Http404("Not found.")
        return redirect("webhook-detail", institution_slug=self.institution.slug, pk=endpoint.pk)
