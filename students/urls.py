from django.urls import path

from . import views

urlpatterns = [
    path("", views.InstitutionHomeView.as_view(), name="institution-home"),
    path("students/", views.StudentListView.as_view(), name="student-list"),
    path("students/<int:pk>/", views.StudentDetailView.as_view(), name="student-detail"),
    path("data-schema/", views.FeatureListView.as_view(), name="feature-list"),
]
