"""The test provider's pages: django-oauth-toolkit's endpoints under /o/, its own login page, and
/control/, through which the test that started it adds people and clients and sets a fault."""

import hmac
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.views import LoginView
from django.http import HttpResponseForbidden, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_application_model


@csrf_exempt
def control(request):
    if not hmac.compare_digest(request.headers.get("X-Peer-Token", ""), settings.CONTROL_TOKEN):
        return HttpResponseForbidden("wrong control token")
    body = json.loads(request.body or b"{}")
    User = get_user_model()
    for person in body.get("users", []):
        user, _ = User.objects.get_or_create(username=person["username"])
        user.email = person.get("email", "")
        user.first_name = person.get("first_name", "")
        user.last_name = person.get("last_name", "")
        user.set_password(person["password"])
        user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in person.get("groups", [])])
    Application = get_application_model()
    for client in body.get("clients", []):
        app = Application.objects.filter(client_id=client["client_id"]).first()
        if app is None:
            app = Application(client_id=client["client_id"], client_secret=client["client_secret"],
                              name=client["client_id"], client_type=Application.CLIENT_CONFIDENTIAL,
                              authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                              algorithm=Application.RS256_ALGORITHM, skip_authorization=True, redirect_uris="")
        uris = set(app.redirect_uris.split()) | set(client.get("redirect_uris", []))
        app.redirect_uris = " ".join(sorted(uris))
        app.save()
    if "mode" in body:
        (settings.DATA_DIR / "mode").write_text(body["mode"])
    return JsonResponse({"ok": True})


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("login/", LoginView.as_view(template_name="peer_login.html"), name="login"),
    path("control/", control),
]
