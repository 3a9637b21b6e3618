"""Invitations (admins send and revoke them; the invited person accepts) and the account pages."""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import TemplateView

from institutions.view_mixins import InstitutionPageMixin

from .forms import InvitationForm, InvitedAccountForm
from .models import Invitation
from .services import (
    InvitationError,
    invitation_accept_existing,
    invitation_accept_new_account,
    invitation_create,
    invitation_from_link,
    invitation_revoke,
    is_service_user,
)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class InvitationListView(InstitutionPageMixin, TemplateView):
    """GET: the institution's invitations; POST ``email`` and ``role``: send one."""

    template_name = "accounts/invitation_list.html"
    required_capability = "manage_users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["invitations"] = self.scoped(Invitation).select_related("invited_by", "accepted_by")[:200]
        context["form"] = kwargs.get("form") or InvitationForm()
        return context

    def post(self, request, *args, **kwargs):
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation, _link = invitation_create(
                    institution=self.institution, invited_by=request.user,
                    base_url=request.build_absolute_uri("/"), **form.cleaned_data)
            except InvitationError as exc:
                form.add_error(None, exc.message)
            else:
                # The same words for every address: nothing says whether it has an account.
                messages.success(request, f"Invitation sent to {invitation.email} "
                                          f"as {invitation.get_role_display()}.")
                return redirect("invitation-list", institution_slug=self.institution.slug)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class InvitationRevokeView(InstitutionPageMixin, View):
    required_capability = "manage_users"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        invitation = get_object_or_404(self.scoped(Invitation), pk=kwargs["pk"])
        try:
            invitation_revoke(institution=self.institution, invitation=invitation, actor=request.user)
        except InvitationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Revoked the invitation to {invitation.email}; its link no longer works.")
        return redirect("invitation-list", institution_slug=self.institution.slug)


class InvitationAcceptView(View):
    """The emailed link. Signed in: join with this account. Not signed in: create an account here
    (choosing its password), or log in first to attach an existing one."""

    template_name = "accounts/invitation_accept.html"

    def dispatch(self, request, *args, **kwargs):
        self.invitation = invitation_from_link(institution_slug=kwargs["institution_slug"],
                                               signed_token=kwargs["token"])
        if self.invitation is None:
            return render(request, "accounts/invitation_invalid.html", status=404)
        return super().dispatch(request, *args, **kwargs)

    def _page(self, request, form=None, error=None, status=200):
        user = request.user
        context = {
            "invitation": self.invitation, "institution": self.invitation.institution,
            "form": form or (None if user.is_authenticated else InvitedAccountForm()),
            "error": error, "service_user": user.is_authenticated and is_service_user(user),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, *args, **kwargs):
        return self._page(request)

    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            try:
                membership = invitation_accept_existing(invitation=self.invitation, user=request.user)
            except InvitationError as exc:
                return self._page(request, error=exc.message, status=400)
        else:
            form = InvitedAccountForm(request.POST)
            if not form.is_valid():
                return self._page(request, form=form, status=400)
            try:
                membership = invitation_accept_new_account(
                    invitation=self.invitation, username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"], first_name=form.cleaned_data.get("first_name", ""),
                    last_name=form.cleaned_data.get("last_name", ""))
            except InvitationError as exc:
                form.add_error(None, exc.message)
                return self._page(request, form=form, status=400)
            login(request, membership.user, backend=MODEL_BACKEND)
        messages.success(request, f"Welcome to {membership.institution.name}: you are "
                                  f"{membership.get_role_display()}.")
        return redirect("institution-home", institution_slug=membership.institution.slug)
