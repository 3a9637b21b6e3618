from django.urls import path

from . import views

urlpatterns = [
    path("", views.InstitutionHomeView.as_view(), name="institution-home"),
]
