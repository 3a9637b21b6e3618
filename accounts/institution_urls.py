"""Under /i/<slug>/: the institution's invitations, sign-in rules and single sign-on (admins only)."""

from django.urls import path

from . import sso_views, views

urlpatterns = [
    path("invitations/", views.InvitationListView.as_view(), name="invitation-list"),
    path("invitations/<int:pk>/revoke/", views.InvitationRevokeView.as_view(), name="invitation-revoke"),
    path("security/", views.SecurityPolicyView.as_view(), name="security-policy"),
    path("sso/", sso_views.IdentityProviderListView.as_view(), name="sso-provider-list"),
    path("sso/new/", sso_views.IdentityProviderEditView.as_view(), name="sso-provider-new"),
    path("sso/<int:pk>/", sso_views.IdentityProviderEditView.as_view(), name="sso-provider-edit"),
    path("sso/<int:pk>/delete/", sso_views.IdentityProviderDeleteView.as_view(), name="sso-provider-delete"),
]
