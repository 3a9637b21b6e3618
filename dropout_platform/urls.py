from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.sso_forms import SsoAwareAuthenticationForm
from courses.views import SurveyAnswerView, SurveySessionAnswerView
from institutions.views import HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=SsoAwareAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("i/<slug:institution_slug>/", include("accounts.institution_urls")),
    # The advisor workspace first: it owns the institution home and the student profile.
    path("i/<slug:institution_slug>/", include("workspace.urls")),
    path("i/<slug:institution_slug>/", include("interventions.urls")),
    path("i/<slug:institution_slug>/", include("institutions.urls")),
    path("i/<slug:institution_slug>/", include("students.urls")),
    path("i/<slug:institution_slug>/", include("courses.urls")),
    path("i/<slug:institution_slug>/", include("predictions.urls")),
    path("i/<slug:institution_slug>/", include("privacy.urls")),
    # An instructor's progress survey: no account, the emailed link is the credential (courses.surveys).
    path("survey/answer/<int:invitation_id>/", SurveySessionAnswerView.as_view(), name="survey-answer-session"),
    path("survey/<str:token>/", SurveyAnswerView.as_view(), name="survey-answer"),
    path("api/v1/", include("dropout_platform.api_urls")),
    # The workspace's resources (the member's notifications), nested as every institution resource.
    path("api/v1/institutions/<slug:institution_slug>/", include("workspace.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view loads its start-up script as a file (no inline script under the CSP); Swagger
    # UI's page keeps one small <style> block, so this page alone allows inline styles.
    path("api/v1/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("admin/", admin.site.urls),
]

# Under /api/ a URL that matches no route answers the API's JSON 404 body, not the HTML page.
handler404 = "institutions.api.errors.page_not_found"
