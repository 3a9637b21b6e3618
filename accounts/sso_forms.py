"""The set-up form of an institution's identity provider, and the password forms that honour
"SSO only" (docs/sso.md)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from institutions.models import Role

from .language import recipient_language
from .models import IdentityProvider, SsoProtocol
from .sso import (
    IdentityProviderError,
    email_domains_parse,
    role_rules_parse,
    role_rules_text,
    sso_only_message,
    sso_only_providers_for,
)
from .sso_secrets import is_env_reference, secret_seal, validate_env_reference


class IdentityProviderForm(forms.ModelForm):
    email_domains_text = forms.CharField(
        label=_("Email domains"), required=False,
        help_text=_("Comma-separated (e.g. uni.example, staff.uni.example): people who type an address of these "
                  "domains on the login page are offered this sign-in."))
    role_rules_text = forms.CharField(
        label=_("Role rules"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One per line: value = admin | advisor | viewer (e.g. 'staff = advisor'). "
                  "When several match, the highest role wins."))
    client_secret = forms.CharField(
        label=_("Client secret"), required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted and never shown again. Leave blank to keep the stored one. "
                  "Or write env:SSO_CLIENT_SECRET_&lt;NAME&gt; to read it from the server's environment."))
    oidc_issuer = forms.URLField(
        label=_("OIDC issuer URL"), required=False, max_length=500, assume_scheme="https",
        help_text=_("e.g. https://login.microsoftonline.com/&lt;tenant id&gt;/v2.0 or https://accounts.google.com; "
                  "its /.well-known/openid-configuration is read at each sign-in."))
    saml_metadata_url = forms.URLField(label=_("SAML IdP metadata URL"), required=False, max_length=500,
                                       assume_scheme="https")
    default_role = forms.ChoiceField(
        label=_("Default role"), required=False, choices=[("", _("None: refuse the sign-in")), *Role.choices],
        help_text=_("The role of a person no rule matches."))

    class Meta:
        model = IdentityProvider
        fields = ["protocol", "name", "enabled", "jit_provisioning", "sso_only", "role_attribute", "default_role",
                  "oidc_issuer", "oidc_client_id", "saml_metadata_url", "saml_metadata_xml", "saml_idp_entity_id",
                  "saml_sp_entity_id"]
        labels = {"protocol": _("Protocol"), "name": _("Name"), "enabled": _("Enabled"),
                  "jit_provisioning": _("Create accounts and memberships on first sign-in (just in time)"),
                  "sso_only": _("SSO only: members cannot log in or reset a password with a password"),
                  "role_attribute": _("Role claim or attribute"), "oidc_issuer": _("OIDC issuer URL"),
                  "oidc_client_id": _("OIDC client id"), "saml_metadata_url": _("SAML IdP metadata URL"),
                  "saml_metadata_xml": _("SAML IdP metadata XML"), "saml_idp_entity_id": _("SAML IdP entity id"),
                  "saml_sp_entity_id": _("SAML SP entity id (this platform)")}
        help_texts = {"name": _('Shown on the login page: "Sign in with &lt;name&gt;".'),
                      "jit_provisioning": _("Create the account and the membership on a person's first sign-in."),
                      "sso_only": _("Members of this institution cannot log in or reset a password with a password."),
                      "role_attribute": _("e.g. groups, roles, eduPersonAffiliation")}
        widgets = {"saml_metadata_xml": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, institution, protocols, claimed_domains: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.institution = institution
        self.claimed_domains = claimed_domains
        if not self.instance.pk:
            self.instance.institution = institution
        self.fields["protocol"].choices = [(value, label) for value, label in SsoProtocol.choices if value in protocols]
        self.new_secret_stored: str | None = None
        if self.instance.pk:
            self.initial.setdefault("email_domains_text", ", ".join(self.instance.email_domains))
            self.initial.setdefault("role_rules_text", role_rules_text(self.instance.role_rules))
            if self.instance.has_client_secret:
                self.fields["client_secret"].help_text = _(
                    "A secret is stored (not shown). Stored encrypted and never shown again. Leave blank to keep the "
                    "stored one. Or write env:SSO_CLIENT_SECRET_&lt;NAME&gt; to read it from the server's environment.")

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["email_domains"] = email_domains_parse(cleaned.get("email_domains_text", ""),
                                                           claimed_elsewhere=self.claimed_domains)
        except IdentityProviderError as exc:
            self.add_error("email_domains_text", exc.message)
        try:
            cleaned["role_rules"] = role_rules_parse(cleaned.get("role_rules_text", ""))
        except ValidationError as exc:
            self.add_error("role_rules_text", exc.messages[0])
            cleaned["role_rules"] = []
        if cleaned.get("role_rules") and not cleaned.get("role_attribute"):
            self.add_error("role_attribute", _("Name the claim or attribute the role rules read (e.g. groups)."))
        if not cleaned.get("role_rules") and not cleaned.get("default_role") and "role_rules_text" not in self.errors:
            self.add_error("default_role", _("Give a default role or at least one role rule: otherwise nobody can "
                                           "sign in."))
        protocol = cleaned.get("protocol")
        if protocol == SsoProtocol.OIDC:
            self._clean_oidc(cleaned)
        elif protocol == SsoProtocol.SAML:
            self._clean_saml(cleaned)
        return cleaned

    def _clean_saml(self, cleaned):
        """The metadata must be readable IdP metadata; its entity id fills (or must equal) the IdP entity id."""
        from .sso_saml import MetadataUnavailable, metadata_entity_id, metadata_fetch

        url, xml = cleaned.get("saml_metadata_url") or "", (cleaned.get("saml_metadata_xml") or "").strip()
        if not (url or xml):
            self.add_error("saml_metadata_url", _("Give the identity provider's metadata URL or paste its XML."))
            return
        try:
            entity_id = metadata_entity_id(xml or metadata_fetch(url))
        except MetadataUnavailable as exc:
            self.add_error("saml_metadata_xml" if xml else "saml_metadata_url", str(exc))
            return
        given = (cleaned.get("saml_idp_entity_id") or "").strip()
        if given and given != entity_id:
            self.add_error("saml_idp_entity_id", _("The metadata describes %(found)s, not %(given)s.") % {
                "found": repr(entity_id), "given": repr(given)})
        cleaned["saml_idp_entity_id"] = entity_id

    def _clean_oidc(self, cleaned):
        issuer = (cleaned.get("oidc_issuer") or "").strip()
        if not issuer:
            self.add_error("oidc_issuer", _("Give the issuer URL (e.g. https://login.microsoftonline.com/<tenant>/v2.0)."))
        elif not issuer.startswith("https://") and not settings.SSO_ALLOW_HTTP_ISSUERS:
            self.add_error("oidc_issuer", _("The issuer URL must start with https://."))
        if not (cleaned.get("oidc_client_id") or "").strip():
            self.add_error("oidc_client_id", _("Give the client id the provider issued for this platform."))
        secret = cleaned.get("client_secret") or ""
        if secret:
            problem = validate_env_reference(secret) if is_env_reference(secret) else None
            if problem:
                self.add_error("client_secret", problem)
            else:
                self.new_secret_stored = secret_seal(secret)
        elif not self.instance.has_client_secret:
            self.add_error("client_secret", _("Give the client secret the provider issued for this platform."))

    def save(self, commit=False):
        provider = super().save(commit=False)
        provider.institution = self.institution
        provider.email_domains = self.cleaned_data["email_domains"]
        provider.role_rules = self.cleaned_data["role_rules"]
        provider.default_role = self.cleaned_data.get("default_role") or ""
        return provider


def refuse_password_if_sso_only(user) -> None:
    providers = sso_only_providers_for(user)
    if providers:
        raise ValidationError(sso_only_message(providers), code="sso_only")


class SsoAwareAuthenticationForm(AuthenticationForm):
    """The login page's form: a member of an institution whose sign-in is "SSO only" cannot log in
    with a password (told so only after the right password, so the page reveals nothing else)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        refuse_password_if_sso_only(user)


class SsoAwareAdminAuthenticationForm(AdminAuthenticationForm):
    """The staff admin's login: the same rule for a staff account that is a member of such an institution."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        refuse_password_if_sso_only(user)


class SsoAwarePasswordResetForm(PasswordResetForm):
    """No reset email for members of an SSO-only institution (the page answers as for any address)."""

    def get_users(self, email):
        for user in super().get_users(email):
            if not sso_only_providers_for(user):
                yield user

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        """In the account holder's language (their choice, else their institutions' shared default,
        else English), not the language of the browser that asked."""
        with translation.override(recipient_language(institution=None, user=context["user"])):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class SsoAwareSetPasswordForm(SetPasswordForm):
    """A reset link sent before the institution turned SSO only on no longer sets a password."""

    def clean(self):
        refuse_password_if_sso_only(self.user)
        return super().clean()
