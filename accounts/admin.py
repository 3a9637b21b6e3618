from django.contrib import admin

from .models import Invitation


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "institution", "role", "created_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("institution", "role")
    search_fields = ("email",)
    # The secret's hash is useless to read and must not be edited.
    exclude = ("token_hash",)
    readonly_fields = ("invited_by", "accepted_by", "revoked_by", "accepted_at", "revoked_at")
