"""Under /accounts/: the invitation link, password change and password reset, single sign-on."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import sso_allauth, sso_saml, sso_views, views
from .sso_forms import SsoAwarePasswordResetForm, SsoAwareSetPasswordForm

urlpatterns = [
    path("invitations/<slug:institution_slug>/<str:token>/", views.InvitationAcceptView.as_view(),
         name="invitation-accept"),
    path("language/", views.LanguageView.as_view(), name="language-choose"),
    path("two-factor/", views.TwoFactorView.as_view(), name="two-factor"),
    path("two-factor/setup/", views.TwoFactorSetupView.as_view(), name="two-factor-setup"),
    path("two-factor/verify/", views.TwoFactorVerifyView.as_view(), name="two-factor-verify"),
    path("two-factor/recovery-codes/", views.RecoveryCodesView.as_view(), name="two-factor-recovery-codes"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", auth_views.PasswordResetView.as_view(form_class=SsoAwarePasswordResetForm),
         name="password_reset"),
    path("password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(form_class=SsoAwareSetPasswordForm),
         name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    # Single sign-on (docs/sso.md): find an institution's sign-in, then its protocol's start and return.
    path("sso/", sso_views.SsoFindView.as_view(), name="sso-find"),
    path("sso/oidc/<str:provider_id>/login/", sso_allauth.oidc_login, name="openid_connect_login"),
    path("sso/oidc/<str:provider_id>/login/callback/", sso_allauth.oidc_callback, name="openid_connect_callback"),
    path("sso/saml/<str:provider_id>/login/", sso_saml.saml_login, name="saml_login"),
    path("sso/saml/<str:provider_id>/acs/", sso_saml.saml_acs, name="saml_acs"),
    path("sso/saml/<str:provider_id>/metadata/", sso_saml.saml_metadata, name="saml_metadata"),
]
