"""The staff admin of institutions, members, jobs, keys and webhooks: platform staff administer
institutions, not students, so nothing here shows a student's name, email, values or notes: a
job's parameters and result (an import's rejected cells and changes) and a delivery's payload and
response are left out, and only their outline (keys, sizes, numbers) is shown."""

from django.contrib import admin, messages
from django.utils.html import format_html_join

from .jobs import JobNotCancellable, job_cancel
from .models import ApiKey, Institution, Job, Membership, WebhookDelivery, WebhookEndpoint
from .services import institution_created_announce


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "default_language", "created_at"]
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


def outline(value) -> list[tuple[str, str]]:
    """(key, shape) pairs of a JSON document without its text: numbers and yes/no as they are,
    text as its length, lists and objects as their size. Student values never pass."""
    if not isinstance(value, dict):
        return [("", _shape(value))]
    return [(str(key), _shape(item)) for key, item in value.items()]


def _shape(item) -> str:
    if isinstance(item, bool) or item is None:
        return str(item)
    if isinstance(item, int | float):
        return str(item)
    if isinstance(item, str):
        return f"text, {len(item)} characters (hidden)"
    if isinstance(item, list):
        return f"list of {len(item)} (hidden)"
    if isinstance(item, dict):
        return f"object with {len(item)} keys (hidden)"
    return type(item).__name__


def outline_html(value):
    rows = outline(value)
    if not rows:
        return "—"
    return format_html_join("", "<div><code>{}</code>: {}</div>", rows)


# Fields of a job that can hold a student's data (an import's rejected cells, its changes).
JOB_PERSONAL_FIELDS = ("params", "result")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "institution", "kind", "status", "percent", "attempts", "lease_expires_at", "created_at",
                    "finished_at"]
    list_filter = ["kind", "status", "institution"]
    exclude = list(JOB_PERSONAL_FIELDS)
    readonly_fields = [*(f.name for f in Job._meta.fields if f.name not in JOB_PERSONAL_FIELDS), "result_outline"]

    @admin.display(description="Result (outline; values are the institution's to read)")
    def result_outline(self, job: Job):
        return outline_html(job.result)
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


# A delivery's payload names students (a flag's, a score's); the receiver's answer may echo it.
DELIVERY_PERSONAL_FIELDS = ("payload", "response_body")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "institution", "event", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "event", "institution"]
    exclude = list(DELIVERY_PERSONAL_FIELDS)
    readonly_fields = [*(f.name for f in WebhookDelivery._meta.fields if f.name not in DELIVERY_PERSONAL_FIELDS),
                       "payload_outline"]

    @admin.display(description="Payload (outline)")
    def payload_outline(self, delivery: WebhookDelivery):
        return outline_html(delivery.payload)
