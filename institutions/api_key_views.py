"""API key pages: an administrator lists, creates (the secret is shown once) and revokes keys."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from .api_key_forms import ApiKeyCreateForm
from .api_keys import api_key_create, api_key_revoke
from .models import ApiKey
from .view_mixins import InstitutionPageMixin


class ApiKeyListView(InstitutionPageMixin, TemplateView):
    template_name = "institutions/api_keys.html"
    required_capability = "manage_keys"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", ApiKeyCreateForm())
        context["api_keys"] = self.scoped(ApiKey).select_related("created_by")
        return context

    def post(self, request, *args, **kwargs):
        form = ApiKeyCreateForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        api_key, raw_key = api_key_create(
            institution=self.institution, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"], rate_per_minute=form.cleaned_data["rate_per_minute"],
            created_by=request.user,
        )
        # Rendered, not redirected: the secret exists only in this one response.
        response = self.render_to_response(
            self.get_context_data(form=ApiKeyCreateForm(), new_key=api_key, raw_key=raw_key), status=201
        )
        add_never_cache_headers(response)
        return response


class ApiKeyRevokeView(InstitutionPageMixin, View):
    required_capability = "manage_keys"

    def post(self, request, *args, **kwargs):
        api_key = get_object_or_404(self.scoped(ApiKey), pk=kwargs["pk"])
        api_key_revoke(institution=self.institution, api_key=api_key)
        messages.success(request, _("Key “%(name)s” (%(prefix)s…) is revoked.") % {
            "name": api_key.name, "prefix": api_key.display_prefix})
        return redirect("api-key-list", institution_slug=self.institution.slug)
