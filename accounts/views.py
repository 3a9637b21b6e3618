"""Invitations (admins send and revoke them; the invited person accepts) and the account pages."""

from base64 import b32encode

import segno
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.view_mixins import InstitutionPageMixin

from .forms import InvitationForm, InvitedAccountForm
from .language import language_choose
from .login_protection import login_lockout_lift
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
from .two_factor import (
    TwoFactorError,
    recovery_codes_generate,
    recovery_codes_left,
    recovery_codes_regenerate,
    security_policy_get,
    security_policy_set,
    totp_device_confirm,
    totp_device_remove,
    totp_device_start,
    totp_verify,
    two_factor_state,
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
                messages.success(request, _("Invitation sent to %(email)s as %(role)s.") % {
                    "email": invitation.email, "role": invitation.get_role_display()})
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
            messages.success(request, _("Revoked the invitation to %(email)s; its link no longer works.") % {
                "email": invitation.email})
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
            # Not "institution": that would show the institution's menu to someone not yet a member.
            "invitation": self.invitation, "invited_to": self.invitation.institution,
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
        messages.success(request, _("Welcome to %(name)s: you are %(role)s.") % {
            "name": membership.institution.name, "role": membership.get_role_display()})
        return redirect("institution-home", institution_slug=membership.institution.slug)


def _safe_next(request, default: str = "home") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse(default)


class TwoFactorView(LoginRequiredMixin, View):
    """The account's two-factor state; POST a current code to turn it off (when no institution requires it)."""

    def get(self, request, error=None, status=200):
        has_device, required = two_factor_state(request.user)
        return render(request, "accounts/two_factor.html",
                      {"has_device": has_device, "required": required, "error": error,
                       "codes_left": recovery_codes_left(request.user)}, status=status)

    def post(self, request):
        try:
            totp_device_remove(user=request.user, token=request.POST.get("token", ""))
        except TwoFactorError as exc:
            return self.get(request, error=exc.message, status=400)
        messages.success(request, _("Two-factor sign-in is off for your account."))
        return redirect("two-factor")


class TwoFactorSetupView(LoginRequiredMixin, View):
    """Show a new key (QR code and text) and confirm it with the first code the app shows."""

    def _page(self, request, device, error=None, status=200):
        url = device.config_url
        context = {"qr_svg": segno.make(url, error="m").svg_inline(scale=4), "key": b32encode(device.bin_key).decode(),
                   "error": error, "next": request.GET.get("next") or request.POST.get("next", "")}
        return render(request, "accounts/two_factor_setup.html", context, status=status)

    def get(self, request):
        return self._page(request, totp_device_start(user=request.user))

    def post(self, request):
        try:
            totp_device_confirm(request=request, user=request.user, token=request.POST.get("token", ""))
        except TwoFactorError as exc:
            device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
            if device is None:
                device = totp_device_start(user=request.user)
            return self._page(request, device, error=exc.message, status=400)
        messages.success(request, _("Two-factor sign-in is on: each login now asks for a code from the app."))
        if not recovery_codes_left(request.user):  # a first set-up, or every old code used
            return _recovery_codes_page(request, recovery_codes_generate(user=request.user),
                                        next_url=_safe_next(request, default="two-factor"))
        return redirect(_safe_next(request, default="two-factor"))


def _recovery_codes_page(request, codes: list[str], next_url: str):
    """The only time the codes are shown: the answer to the POST that made them, never cached."""
    response = render(request, "accounts/recovery_codes.html", {"codes": codes, "next": next_url})
    add_never_cache_headers(response)
    return response


class RecoveryCodesView(LoginRequiredMixin, View):
    """POST a current code from the app: new recovery codes, shown once; the old ones stop working."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            codes = recovery_codes_regenerate(user=request.user, token=request.POST.get("token", ""))
        except TwoFactorError as exc:
            return TwoFactorView().get(request, error=exc.message, status=400)
        return _recovery_codes_page(request, codes, next_url=reverse("two-factor"))


class TwoFactorVerifyView(LoginRequiredMixin, View):
    """The second step of a login."""

    def get(self, request, error=None, status=200):
        return render(request, "accounts/two_factor_verify.html",
                      {"error": error, "next": request.GET.get("next") or request.POST.get("next", "")}, status=status)

    def post(self, request):
        try:
            totp_verify(request=request, user=request.user, token=request.POST.get("token", ""))
        except TwoFactorError as exc:
            return self.get(request, error=exc.message, status=400)
        return redirect(_safe_next(request))


class SecurityPolicyView(InstitutionPageMixin, TemplateView):
    """GET: the institution's sign-in rules; POST: change them (admins)."""

    template_name = "accounts/security_policy.html"
    required_capability = "manage_users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["policy"] = security_policy_get(institution=self.institution)
        context["error"] = kwargs.get("error")
        return context

    def post(self, request, *args, **kwargs):
        require = request.POST.get("require_admin_two_factor") == "on"
        try:
            security_policy_set(institution=self.institution, require_admin_two_factor=require, actor=request.user)
        except TwoFactorError as exc:
            return self.render_to_response(self.get_context_data(error=exc.message), status=400)
        messages.success(request, _("Administrators must now use two-factor sign-in.") if require
                         else _("Two-factor sign-in is now optional for administrators."))
        return redirect("security-policy", institution_slug=self.institution.slug)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's, plus: setting a new password through the emailed link lifts a lockout of that
    username (the person has just proved they hold the account's mailbox)."""

    def form_valid(self, form):
        response = super().form_valid(form)
        login_lockout_lift(username=form.user.get_username())
        return response


class LanguageView(LoginRequiredMixin, View):
    """The language selector of the top bar (POST): the signed-in person's own language, or ""
    for their institution's default. Changes only their own preference; goes back to ``next``."""

    http_method_names = ["post"]

    def post(self, request):
        language = request.POST.get("language", "")
        try:
            preference = language_choose(user=request.user, language=language)
        except ValidationError as error:
            messages.error(request, error.messages[0])
            return redirect(_safe_next(request))
        translation.activate(preference.language or translation.get_language())
        if preference.language:
            messages.success(request, _("Your pages are now in %(language)s.") % {
                "language": translation.get_language_info(preference.language)["name_local"]})
        else:
            messages.success(request, _("Your pages now follow your institution's language."))
        return redirect(_safe_next(request))
