"""The form an administrator fills in to create an API key."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .api_keys import SCOPE_FAMILIES

EXPIRY_CHOICES = [("30", _("In 30 days")), ("90", _("In 90 days")), ("365", _("In a year")), ("never", _("Never"))]
LEVEL_CHOICES = [("", _("No access")), ("read", _("Read")), ("write", _("Read and write"))]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label=_("Name"),
                           help_text=_("Which system will use it, e.g. “Nightly SIS sync”."))
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label=_("Expires"))
    rate_per_minute = forms.IntegerField(
        min_value=1, max_value=100_000, initial=600, label=_("Requests per minute"),
        help_text=_("Above this the API answers 429 with Retry-After."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for family, description in SCOPE_FAMILIES.items():
            self.fields[f"scope_{family}"] = forms.ChoiceField(
                choices=LEVEL_CHOICES, required=False, label=description, initial="",
            )

    @property
    def scope_fields(self):
        return [self[f"scope_{family}"] for family in SCOPE_FAMILIES]

    def clean(self):
        cleaned = super().clean()
        scopes = [f"{family}:{cleaned[f'scope_{family}']}" for family in SCOPE_FAMILIES
                  if cleaned.get(f"scope_{family}")]
        if not scopes:
            raise forms.ValidationError(_("Give the key access to at least one kind of resource."))
        cleaned["scopes"] = scopes
        expires = cleaned.get("expires")
        cleaned["expires_at"] = None if expires in (None, "never") else timezone.now() + timedelta(days=int(expires))
        return cleaned
