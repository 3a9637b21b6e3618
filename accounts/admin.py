from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib import admin
from django.db import models

from .models import IdentityProvider, Invitation, RecoveryCodeDevice, SsoIdentity
from .sso_forms import SsoAwareAdminAuthenticationForm

# "SSO only" (docs/sso.md) holds on the staff admin's login too.
admin.site.login_form = SsoAwareAdminAuthenticationForm


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "institution", "role", "created_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("institution", "role")
    search_fields = ("email",)
    # The secret's hash is useless to read and must not be edited.
    exclude = ("token_hash",)
    readonly_fields = ("invited_by", "accepted_by", "revoked_by", "accepted_at", "revoked_at")


@admin.register(RecoveryCodeDevice)
class RecoveryCodeDeviceAdmin(admin.ModelAdmin):
    """Staff can only see how many codes are left and delete the set (with a lost phone); the
    codes' hashes are never shown."""

    list_display = ("user", "codes_left")
    search_fields = ("user__username",)
    fields = ("user", "name")
    readonly_fields = ("user", "name")

    def has_add_permission(self, request):
        return False

    @admin.display(description="unused codes")
    def codes_left(self, obj):
        return obj.codes.filter(used_at=None).count()


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin):
    """Institutions set their providers up themselves (/i/<slug>/sso/); staff see them. The client
    secret is never shown nor editable here."""

    list_display = ("name", "institution", "protocol", "enabled", "jit_provisioning", "sso_only")
    list_filter = ("protocol", "enabled", "sso_only")
    exclude = ("oidc_client_secret_stored",)
    readonly_fields = ("updated_by",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    list_display = ("subject", "provider", "user", "created_at", "last_login_at")
    search_fields = ("subject", "user__username", "email")
    readonly_fields = ("provider", "subject", "user", "email", "created_at", "last_login_at")

    def has_add_permission(self, request):
        return False


# allauth's own tables stay empty: its apps come from IdentityProvider (accounts.sso_allauth).
for _model in (SocialApp, SocialAccount, SocialToken, EmailAddress):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
