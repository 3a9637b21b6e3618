"""Under /accounts/: the invitation link, password change and password reset."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("invitations/<slug:institution_slug>/<str:token>/", views.InvitationAcceptView.as_view(),
         name="invitation-accept"),
    path("two-factor/", views.TwoFactorView.as_view(), name="two-factor"),
    path("two-factor/setup/", views.TwoFactorSetupView.as_view(), name="two-factor-setup"),
    path("two-factor/verify/", views.TwoFactorVerifyView.as_view(), name="two-factor-verify"),
    path("two-factor/recovery-codes/", views.RecoveryCodesView.as_view(), name="two-factor-recovery-codes"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
