"""Under /i/<slug>/: the institution's invitations (admins only)."""

from django.urls import path

from . import views

urlpatterns = [
    path("invitations/", views.InvitationListView.as_view(), name="invitation-list"),
    path("invitations/<int:pk>/revoke/", views.InvitationRevokeView.as_view(), name="invitation-revoke"),
    path("security/", views.SecurityPolicyView.as_view(), name="security-policy"),
]
