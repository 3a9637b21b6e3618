from django.urls import path

from . import views

urlpatterns = [
    path("rosters/", views.RosterUploadView.as_view(), name="roster-upload"),
    path("rosters/<int:pk>/", views.RosterImportDetailView.as_view(), name="roster-import-detail"),
    path("rosters/<int:pk>/confirm/", views.RosterImportConfirmView.as_view(), name="roster-import-confirm"),
    path("rosters/<int:pk>/discard/", views.RosterImportDiscardView.as_view(), name="roster-import-discard"),
    path("surveys/", views.SurveyListView.as_view(), name="survey-list"),
    path("surveys/new/", views.SurveyOpenView.as_view(), name="survey-open"),
    path("surveys/concern-types/", views.ConcernTypeListView.as_view(), name="concern-types"),
    path("surveys/<int:pk>/", views.SurveyDetailView.as_view(), name="survey-detail"),
    path("surveys/<int:pk>/remind/", views.SurveyRemindView.as_view(), name="survey-remind"),
    path("surveys/<int:pk>/close/", views.SurveyCloseView.as_view(), name="survey-close"),
]
