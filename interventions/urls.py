"""Pages of the interventions app under ``/i/<slug>/``: interventions, flags, caseload assignment,
intervention types and the effectiveness report (the composite advisor pages are in ``workspace``)."""

from django.urls import path

from . import views, views_alerts

urlpatterns = [
    path("caseload/assign/", views.CaseloadAssignView.as_view(), name="caseload-assign"),
    path("interventions/", views.InterventionListView.as_view(), name="intervention-list"),
    path("interventions/<int:pk>/", views.InterventionEditView.as_view(), name="intervention-edit"),
    path("flags/<int:pk>/resolve/", views.FlagResolveView.as_view(), name="flag-resolve"),
    path("intervention-types/", views.InterventionTypeListView.as_view(), name="intervention-types"),
    path("access/", views.AccessSettingsView.as_view(), name="access-settings"),
    path("access/grants/<int:pk>/revoke/", views.AccessGrantRevokeView.as_view(), name="access-grant-revoke"),
    path("effectiveness/", views.EffectivenessView.as_view(), name="effectiveness"),
    # Alerts and referrals
    path("alerts/", views_alerts.AlertListView.as_view(), name="alert-list"),
    path("alerts/all/", views_alerts.AllAlertListView.as_view(), name="alert-all"),
    path("alerts/unassigned/", views_alerts.UnassignedAlertListView.as_view(), name="alert-unassigned"),
    path("alerts/<int:pk>/", views_alerts.AlertDetailView.as_view(), name="alert-detail"),
    path("students/<int:pk>/alerts/new/", views_alerts.AlertRaiseView.as_view(), name="alert-raise"),
    path("offices/", views_alerts.OfficeListView.as_view(), name="office-list"),
    path("offices/<int:pk>/", views_alerts.OfficeDetailView.as_view(), name="office-detail"),
    path("offices/<int:pk>/alerts/", views_alerts.OfficeAlertListView.as_view(), name="office-alerts"),
    path("alert-rules/", views_alerts.AlertRuleListView.as_view(), name="alert-rules"),
]
