"""Single sign-on pages: finding an institution's sign-in, and its administrators' set-up (docs/sso.md)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from institutions.view_mixins import InstitutionPageMixin

from .models import IdentityProvider, SsoIdentity, SsoProtocol
from .sso import (
    IdentityProviderError,
    email_domain,
    email_domains_claimed_outside,
    identity_provider_delete,
    identity_provider_save,
    institutions_with_sso,
    protocols_available,
    providers_for_email,
    providers_for_institution,
)
from .sso_allauth import CALLBACK_URLS, SIGN_IN_URLS
from .sso_forms import IdentityProviderForm


def sign_in_url(provider: IdentityProvider) -> str:
    """Where the "Sign in with ..." button posts (allauth's login view of the provider's protocol)."""
    name, kwarg = SIGN_IN_URLS[provider.protocol]
    return reverse(name, kwargs={kwarg: provider.allauth_provider_id})


def callback_url(request, provider: IdentityProvider) -> str:
    """What the institution registers at its provider (OIDC redirect URI, SAML ACS URL)."""
    if provider.protocol not in CALLBACK_URLS:
        return ""
    name, kwarg = CALLBACK_URLS[provider.protocol]
    return request.build_absolute_uri(reverse(name, kwargs={kwarg: provider.allauth_provider_id}))


class SsoFindView(View):
    """The login page's "Sign in with your institution": by email domain (POST ``email``) or by
    choosing the institution (GET ``institution``). Signed in, the buttons connect the account."""

    def _page(self, request, *, providers=None, searched="", status=200):
        buttons = [{"provider": p, "url": sign_in_url(p)} for p in (providers or [])
                   if p.protocol in protocols_available()]
        context = {"buttons": buttons, "searched": searched, "institutions": institutions_with_sso(),
                   "chosen": request.GET.get("institution", ""), "next": request.POST.get("next") or
                   request.GET.get("next", ""), "email": request.POST.get("email", "")}
        return render(request, "accounts/sso_find.html", context, status=status)

    def get(self, request):
        slug = request.GET.get("institution", "")
        if slug:
            return self._page(request, providers=providers_for_institution(slug), searched="institution")
        return self._page(request)

    def post(self, request):
        email = request.POST.get("email", "").strip()
        if not email_domain(email):
            messages.error(request, _("Type your email address (name@your-university), or choose your institution."))
            return self._page(request, status=400)
        return self._page(request, providers=providers_for_email(email), searched="email")


class IdentityProviderListView(InstitutionPageMixin, TemplateView):
    template_name = "accounts/sso_provider_list.html"
    required_capability = "manage_users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        providers = list(self.scoped(IdentityProvider).select_related("updated_by"))
        linked = set(self.scoped(SsoIdentity).filter(user=self.request.user).values_list("provider_id", flat=True))
        context["rows"] = [{"provider": p, "callback_url": callback_url(self.request, p),
                            "sign_in_url": sign_in_url(p) if p.protocol in protocols_available() else "",
                            "you_are_linked": p.pk in linked,
                            "people": self.scoped(SsoIdentity).filter(provider=p).count()} for p in providers]
        return context


class IdentityProviderEditView(InstitutionPageMixin, TemplateView):
    """GET: the set-up form (new, or of provider ``pk``); POST: save it. The secret is never rendered."""

    template_name = "accounts/sso_provider_form.html"
    required_capability = "manage_users"

    def dispatch(self, request, *args, **kwargs):
        # Before the institution's scope begins: inside it, other institutions' rows are not visible.
        self.claimed_domains = email_domains_claimed_outside(kwargs["institution_slug"])
        return super().dispatch(request, *args, **kwargs)

    def _provider(self):
        pk = self.kwargs.get("pk")
        if pk is None:
            return IdentityProvider(institution=self.institution)
        return get_object_or_404(self.scoped(IdentityProvider), pk=pk)

    def _form(self, data=None):
        return IdentityProviderForm(data, instance=self._provider(), institution=self.institution,
                                    protocols=protocols_available(), claimed_domains=self.claimed_domains)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = kwargs.get("form") or self._form()
        context["form"] = form
        context["editing"] = form.instance.pk is not None
        if form.instance.pk:
            context["callback_url"] = callback_url(self.request, form.instance)
            if form.instance.protocol == SsoProtocol.SAML:
                from .sso_saml import sp_entity_id

                context["saml_metadata_url"] = self.request.build_absolute_uri(
                    reverse("saml_metadata", kwargs={"provider_id": form.instance.allauth_provider_id}))
                context["saml_sp_entity_id"] = sp_entity_id(self.request, form.instance)
        return context

    def post(self, request, *args, **kwargs):
        form = self._form(request.POST)
        if form.is_valid():
            try:
                provider = identity_provider_save(institution=self.institution, provider=form.save(),
                                                  actor=request.user, new_secret_stored=form.new_secret_stored)
            except IdentityProviderError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Saved the sign-in “%(name)s”.") % {"name": provider.name})
                return redirect("sso-provider-list", institution_slug=self.institution.slug)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class IdentityProviderDeleteView(InstitutionPageMixin, View):
    required_capability = "manage_users"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        provider = get_object_or_404(self.scoped(IdentityProvider), pk=kwargs["pk"])
        identity_provider_delete(institution=self.institution, provider=provider)
        messages.success(request, _("Removed the sign-in “%(name)s”; accounts created through it remain "
                                    "and keep their memberships until removed.") % {"name": provider.name})
        return redirect("sso-provider-list", institution_slug=self.institution.slug)
