"""The advisor's composite pages under ``/i/<slug>/``.

Included first (see dropout_platform/urls.py): this app owns the institution home
(``institution-home``) and the student profile (``student-detail``).
"""

from django.urls import path

from . import access_log, applicant_views, notification_views, views

urlpatterns = [
    path("", views.InstitutionHomeView.as_view(), name="institution-home"),
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("flagged/", views.FlaggedListView.as_view(), name="flagged-list"),
    path("caseload/", views.CaseloadView.as_view(), name="caseload"),
    path("students/<int:pk>/", views.StudentProfileView.as_view(), name="student-detail"),
    path("students/<int:pk>/what-if/", views.StudentWhatIfView.as_view(), name="student-what-if"),
    path("students/<int:pk>/interventions/new/", views.InterventionCreateView.as_view(), name="intervention-create"),
    path("students/<int:pk>/flags/new/", views.FlagCreateView.as_view(), name="flag-create"),
    path("students/<int:pk>/risk-feedback/", views.RiskFeedbackCreateView.as_view(), name="risk-feedback-create"),
    path("students/<int:pk>/flags/review-model/", views.ModelFlagReviewView.as_view(), name="model-flag-review"),
    path("applicants/score/", applicant_views.ApplicantScoreView.as_view(), name="applicant-score"),
    path("access-log/", access_log.AccessLogView.as_view(), name="access-log"),
    path("notifications/", notification_views.NotificationListView.as_view(), name="notification-list"),
    path("notifications/<int:pk>/", notification_views.NotificationOpenView.as_view(), name="notification-open"),
    path("notifications/read-all/", notification_views.NotificationMarkAllReadView.as_view(),
         name="notification-read-all"),
    path("notifications/preferences/", notification_views.NotificationPreferencesView.as_view(),
         name="notification-preferences"),
]
