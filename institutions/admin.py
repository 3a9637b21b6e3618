from django.contrib import admin, messages

from .jobs import JobNotCancellable, job_cancel
from .models import ApiKey, Institution, Job, Membership, WebhookDelivery, WebhookEndpoint
from .services import institution_created_announce


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            institution_created_announce(institution=obj)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "institution", "role", "created_at"]
    list_filter = ["role", "institution"]
    search_fields = ["user__username", "user__email", "institution__name"]
    autocomplete_fields = ["user"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "institution", "kind", "status", "percent", "attempts", "lease_expires_at", "created_at",
                    "finished_at"]
    list_filter = ["kind", "status", "institution"]
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected queued or running jobs")
    def cancel_jobs(self, request, queryset):
        """Staff stop a stuck or unwanted job: queued ones at once, running ones at their next step
        (the sweeper records it if their worker is gone). Who did it is recorded on each job."""
        cancelled = refused = 0
        for job in queryset.select_related("institution"):
            try:
                job_cancel(job=job, user=request.user)
                cancelled += 1
            except JobNotCancellable:
                refused += 1
        self.message_user(request, f"{cancelled} job(s) cancelled or asked to stop; {refused} had already finished.",
                          messages.SUCCESS if cancelled else messages.WARNING)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Platform staff see keys and can revoke them; the secret itself was never stored."""

    list_display = ["name", "display_prefix", "institution", "state", "last_used_at", "created_at"]
    list_filter = ["institution"]
    readonly_fields = [f.name for f in ApiKey._meta.fields if f.name != "revoked_at"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "institution", "is_active", "created_at"]
    list_filter = ["is_active", "institution"]
    exclude = ["secret"]
    # Staff may pause an endpoint; its URL and events are the institution's to change.
    readonly_fields = ["institution", "url", "description", "events", "created_by", "created_at", "updated_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "institution", "event", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "event", "institution"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
