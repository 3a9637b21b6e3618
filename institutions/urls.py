from django.urls import path

from . import api_key_views, job_views, member_views, webhook_views

urlpatterns = [
    path("jobs/<int:pk>/cancel/", job_views.JobCancelView.as_view(), name="job-cancel"),
    path("members/", member_views.MemberListView.as_view(), name="member-list"),
    path("members/language/", member_views.InstitutionLanguageView.as_view(), name="institution-language"),
    path("members/<int:pk>/", member_views.MemberUpdateView.as_view(), name="member-update"),
    path("api-keys/", api_key_views.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/revoke/", api_key_views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("webhooks/", webhook_views.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", webhook_views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/<slug:action>/", webhook_views.WebhookActionView.as_view(), name="webhook-action"),
]
