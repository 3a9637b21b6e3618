"""Pages of the advisor workspace under ``/i/<slug>/``.

Included before ``institutions.urls``/``students.urls`` (see dropout_platform/urls.py): this app
owns the institution home (``institution-home``) and the student profile (``student-detail``).
"""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.InstitutionHomeView.as_view(), name="institution-home"),
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("flagged/", views.FlaggedListView.as_view(), name="flagged-list"),
    path("caseload/", views.CaseloadView.as_view(), name="caseload"),
    path("caseload/assign/", views.CaseloadAssignView.as_view(), name="caseload-assign"),
    path("students/<int:pk>/", views.StudentProfileView.as_view(), name="student-detail"),
    path("students/<int:pk>/what-if/", views.StudentWhatIfView.as_view(), name="student-what-if"),
    path("students/<int:pk>/interventions/new/", views.InterventionCreateView.as_view(), name="intervention-create"),
    path("students/<int:pk>/flags/new/", views.FlagCreateView.as_view(), name="flag-create"),
    path("students/<int:pk>/flags/review-model/", views.ModelFlagReviewView.as_view(), name="model-flag-review"),
    path("interventions/", views.InterventionListView.as_view(), name="intervention-list"),
    path("interventions/<int:pk>/", views.InterventionEditView.as_view(), name="intervention-edit"),
    path("flags/<int:pk>/resolve/", views.FlagResolveView.as_view(), name="flag-resolve"),
    path("intervention-types/", views.InterventionTypeListView.as_view(), name="intervention-types"),
    path("effectiveness/", views.EffectivenessView.as_view(), name="effectiveness"),
]
