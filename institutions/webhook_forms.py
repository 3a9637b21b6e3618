"""The form an administrator uses to register or edit a webhook endpoint."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .webhooks import WEBHOOK_EVENTS, WebhookUrlInvalid, validate_webhook_url


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(max_length=500, label=_("Endpoint URL"),
                          help_text=_("HTTPS address that receives POSTed JSON events."))
    description = forms.CharField(max_length=200, required=False, label=_("Description"))
    events = forms.MultipleChoiceField(choices=list(WEBHOOK_EVENTS.items()), widget=forms.CheckboxSelectMultiple,
                                       label=_("Events"), help_text=_("Which events to send to this endpoint."))

    def clean_url(self):
        try:
            return validate_webhook_url(self.cleaned_data["url"])
        except WebhookUrlInvalid as exc:
            raise forms.ValidationError(str(exc)) from None
