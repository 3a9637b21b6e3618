from django.contrib import admin

from .models import Invitation, RecoveryCodeDevice


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
