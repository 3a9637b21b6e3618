"""Base classes for the institution API (``/api/v1/institutions/<slug>/...``).

:class:`InstitutionViewSet` resolves the institution from the URL once, checks the credential
against it (a session user's membership, or an API key bound to exactly that institution), and
runs the request inside that scope. Subclasses set ``model`` and may narrow the queryset with
``filter_scoped_queryset``; overriding ``get_queryset`` is refused at class creation, so a
viewset cannot accidentally serve another institution's rows.
"""

from __future__ import annotations

import hashlib

from django.http import Http404, HttpResponseNotModified
from django.utils.http import parse_etags
from django.utils.translation import gettext as _
from rest_framework import permissions, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from ..access import NOT_FOUND_MESSAGE, access_membership, viewer_restriction_for
from ..api_keys import api_scope_family
from ..models import Institution, Membership
from ..scoping import enter_scope, exit_scope

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
NO_STORE = "private, no-store"


class InstitutionAccess:
    """Who is calling, and what they may do, in the institution named by the URL."""

    def __init__(self, *, institution: Institution, membership: Membership | None = None, api_key=None):
        self.institution = institution
        self.membership = membership
        self.api_key = api_key

    def can(self, capability: str, *, write: bool, family: str | None = None) -> bool:
        if self.api_key is not None:
            return self.api_key.allows(capability, write=write, family=family)
        return self.membership is not None and self.membership.can(capability)


def resolve_institution_access(request, institution_slug: str) -> InstitutionAccess:
    # An API key authenticates as exactly one institution (see institutions.api.authentication).
    api_key = request.auth if getattr(request.auth, "is_api_key", False) else None
    if api_key is not None:
        if api_key.institution.slug != institution_slug:
            raise NotFound(NOT_FOUND_MESSAGE)
        return InstitutionAccess(institution=api_key.institution, api_key=api_key)
    try:
        membership = access_membership(user=request.user, institution_slug=institution_slug)
    except Http404:
        raise NotFound(NOT_FOUND_MESSAGE) from None
    return InstitutionAccess(institution=membership.institution, membership=membership)


class HasInstitutionCapability(permissions.BasePermission):
    """The view's ``read_capability``/``write_capability`` (or per-action ``capability_map``)."""

    def has_permission(self, request, view) -> bool:
        access: InstitutionAccess = view.access
        # A POST that only computes an answer (scoring records it does not keep) reads, for a key's scopes.
        write = request.method not in SAFE_METHODS and not getattr(view, "post_changes_nothing", False)
        capability = getattr(view, "capability_map", {}).get(getattr(view, "action", None))
        if capability is None:
            capability = view.write_capability if write else view.read_capability
        if not access.can(capability, write=write, family=api_scope_family(view, capability)):
            raise PermissionDenied(_("Your role or key does not allow this action in this institution."))
        return True


class InstitutionScopeMixin:
    """Shared by viewsets and plain API views: resolve, authorise, and scope the request."""

    read_capability = "view_students"
    write_capability = "edit_students"
    capability_map: dict[str, str] = {}

    access: InstitutionAccess
    institution: Institution

    def get_permissions(self):
        return [permissions.IsAuthenticated(), HasInstitutionCapability()]

    def initial(self, request, *args, **kwargs):
        # Authenticate first (DRF does it lazily), then resolve the institution and enter its
        # scope, then let the permission classes check the capability.
        self.perform_authentication(request)
        if request.user is not None and request.user.is_authenticated:
            self.access = resolve_institution_access(request, kwargs["institution_slug"])
            self.institution = self.access.institution
            # A session member reads through need-to-know when it applies to them; a key never does.
            self._scope_token = enter_scope(self.institution, viewer_restriction_for(self.access.membership))
        super().initial(request, *args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        self._scope_token = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._scope_token is not None:
                exit_scope(self._scope_token)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["institution"] = getattr(self, "institution", None)
        return context

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Institution data (students above all) stays in no cache, shared or the browser's; a
        # client keeps an ETag itself to ask again with If-None-Match.
        response["Cache-Control"] = NO_STORE
        return conditional_read_response(request, response)


def conditional_read_response(request, response):
    """Give successful reads an ``ETag`` and answer a matching ``If-None-Match`` with 304.

    The tag is a hash of the rendered body, so it changes exactly when what the caller would
    receive changes (including rows becoming visible or hidden). Rendering happens here, inside
    the institution scope, and Django does not render the response a second time.
    """
    if request.method not in ("GET", "HEAD") or response.status_code != 200 or not isinstance(response, Response):
        return response
    response.render()
    digest = hashlib.sha256(response.content)
    digest.update(str(response.get("Content-Type", "")).encode())
    etag = f'"{digest.hexdigest()[:40]}"'
    response["ETag"] = etag
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        wanted = parse_etags(if_none_match)
        if "*" in wanted or any(tag.removeprefix("W/") == etag for tag in wanted):
            not_modified = HttpResponseNotModified()
            not_modified["ETag"] = etag
            not_modified["Cache-Control"] = NO_STORE
            return not_modified
    return response


class InstitutionViewSet(InstitutionScopeMixin, viewsets.GenericViewSet):
    model = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must not override get_queryset (it would bypass institution scoping); "
                "override filter_scoped_queryset instead"
            )

    def get_queryset(self):
        if self.model is None:
            raise TypeError(f"{type(self).__name__}.model is not set")
        if getattr(self, "swagger_fake_view", False):
            # Schema generation introspects the model with no request and no institution; it
            # reads no rows, so the base manager's empty queryset is safe here.
            return self.model.all_institutions.none()
        return self.filter_scoped_queryset(self.model.objects.for_institution(self.institution))

    def filter_scoped_queryset(self, queryset):
        return queryset

    def access_object(self, object_id):
        """The object a detail route names, through the owning app's ``access_<entity>`` selector,
        so that an id in a URL resolves exactly as the same id in a request body would. ``None``:
        the scoped queryset's row (DRF's lookup)."""
        return None

    def get_object(self):
        found = self.access_object(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        if found is None:
            return super().get_object()
        self.check_object_permissions(self.request, found)
        return found

    def filter_queryset(self, queryset):
        # Query-string filters narrow lists; on a single object (retrieve/update/delete) they
        # would only cost a FilterSet per request (measured: the largest CPU item of a detail GET).
        if self.kwargs.get(self.lookup_url_kwarg or self.lookup_field) is not None:
            return queryset
        return super().filter_queryset(queryset)
