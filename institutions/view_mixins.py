"""Base classes for institution pages (``/i/<slug>/...``).

A page subclasses :class:`InstitutionPageMixin` and names the capability it needs; the mixin
resolves the institution from the URL, checks the membership, and runs the whole request,
template rendering included, inside that institution's scope. Querysets are built with
``self.scoped(Model)`` so that unscoped access has to be written on purpose.
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.cache import add_never_cache_headers

from .access import access_membership, viewer_restriction_for
from .models import Institution, Membership
from .scoping import institution_scope, viewer_restriction


class InstitutionPageMixin(LoginRequiredMixin):
    """Resolve ``institution_slug`` from the URL; 404 unless the user is a member."""

    required_capability: str = "view_aggregates"
    # Capability needed for unsafe methods (POST, PUT, PATCH, DELETE); defaults to required_capability.
    write_capability: str | None = None

    institution: Institution
    membership: Membership

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.membership = access_membership(user=request.user, institution_slug=kwargs["institution_slug"])
        self.institution = self.membership.institution
        request.institution = self.institution
        request.membership = self.membership
        needed = self.required_capability
        if request.method not in ("GET", "HEAD", "OPTIONS") and self.write_capability:
            needed = self.write_capability
        if not self.membership.can(needed):
            raise PermissionDenied(f"Your role ({self.membership.get_role_display()}) cannot do this.")
        with institution_scope(self.institution), viewer_restriction(viewer_restriction_for(self.membership)):
            response = super().dispatch(request, *args, **kwargs)
            # Template responses render lazily, after dispatch; render while the scope is active.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        # Institution pages show students (profiles, lists, exports) or figures about them: no
        # browser or proxy keeps a copy (Cache-Control: no-store, private).
        add_never_cache_headers(response)
        return response

    def scoped(self, model: type[models.Model]):
        return model.objects.for_institution(self.institution)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["institution"] = self.institution
        context["membership"] = self.membership
        return context


def int_param(value) -> int | None:
    """An integer from a query string or form value; anything else (missing, "abc", "none") is None."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
