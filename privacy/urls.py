from django.urls import path

from . import views

urlpatterns = [
    path("privacy/retention/", views.RetentionView.as_view(), name="retention"),
    path("privacy/retention/run/", views.RetentionRunView.as_view(), name="retention-run"),
    path("privacy/erasures/", views.ErasureListView.as_view(), name="erasure-list"),
    path("students/<int:pk>/export/", views.StudentExportView.as_view(), name="student-export"),
    path("students/<int:pk>/export.json", views.StudentExportJsonView.as_view(), name="student-export-json"),
    path("students/<int:pk>/erase/", views.StudentEraseView.as_view(), name="student-erase"),
]
