"""Two-factor sign-in is enforced here, for every page, the staff admin and session API calls."""

from urllib.parse import urlencode

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation

from .language import chosen_language, language_for
from .two_factor import two_factor_state


class TwoFactorMiddleware:
    """After the password, an account with an authenticator reaches nothing but the code page
    until it gives a code; an administrator of an institution that requires two-factor reaches
    nothing but the set-up page until an authenticator is confirmed. Goes after django-otp's
    OTPMiddleware. API keys are not session users and are not affected."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and not user.is_verified()
                and not self._exempt(request.path)):
            has_device, required = two_factor_state(user)
            if has_device:
                return self._send_to(request, "two-factor-verify", "two_factor_code_needed")
            if required:
                return self._send_to(request, "two-factor-setup", "two_factor_setup_needed")
        return self.get_response(request)

    @staticmethod
    def _exempt(path: str) -> bool:
        return path.startswith(("/accounts/two-factor/", "/accounts/logout/", "/" + settings.STATIC_URL.lstrip("/")))

    @staticmethod
    def _send_to(request, url_name: str, code: str):
        if request.path.startswith("/api/"):
            body = {"code": code, "message": "Finish two-factor sign-in in the browser first.", "errors": {}}
            return JsonResponse(body, status=403)
        return redirect(f"{reverse(url_name)}?{urlencode({'next': request.get_full_path()})}")


class UserLanguageMiddleware:
    """Activate the language of the page (accounts/language.py): the member's own choice, then
    the default of the institution in the URL (``institution_slug``), then the browser's, which
    Django's LocaleMiddleware activated earlier. Goes after AuthenticationMiddleware. Runs in
    process_view, where the URL's institution is known; every request activates afresh."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The person's own choice first, so that it holds on every page, a 404 included.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            language = chosen_language(user)
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        slug = view_kwargs.get("institution_slug")
        language = language_for(user, slug if isinstance(slug, str) else None)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return None
