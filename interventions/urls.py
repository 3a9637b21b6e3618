"""Pages of the interventions app under ``/i/<slug>/``: interventions, flags, caseload assignment,
intervention types and the effectiveness report (the composite advisor pages are in ``workspace``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("caseload/assign/", views.CaseloadAssignView.as_view(), name="caseload-assign"),
    path("interventions/", views.InterventionListView.as_view(), name="intervention-list"),
    path("interventions/<int:pk>/", views.InterventionEditView.as_view(), name="intervention-edit"),
    path("flags/<int:pk>/resolve/", views.FlagResolveView.as_view(), name="flag-resolve"),
    path("intervention-types/", views.InterventionTypeListView.as_view(), name="intervention-types"),
    path("access/", views.AccessSettingsView.as_view(), name="access-settings"),
    path("access/grants/<int:pk>/revoke/", views.AccessGrantRevokeView.as_view(), name="access-grant-revoke"),
    path("effectiveness/", views.EffectivenessView.as_view(), name="effectiveness"),
]
