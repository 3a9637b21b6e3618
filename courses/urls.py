from django.urls import path

from . import views

urlpatterns = [
    path("rosters/", views.RosterUploadView.as_view(), name="roster-upload"),
    path("rosters/<int:pk>/", views.RosterImportDetailView.as_view(), name="roster-import-detail"),
    path("rosters/<int:pk>/confirm/", views.RosterImportConfirmView.as_view(), name="roster-import-confirm"),
    path("rosters/<int:pk>/discard/", views.RosterImportDiscardView.as_view(), name="roster-import-discard"),
]
