from django.urls import path

from . import views

urlpatterns = [
    path("students/", views.StudentListView.as_view(), name="student-list"),
    path("data-schema/", views.FeatureListView.as_view(), name="feature-list"),
]
