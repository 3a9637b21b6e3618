"""Browser protections: a Content-Security-Policy without inline script or style on every page,
templates free of style attributes (which that policy would block), the API docs page loading its
start-up script as a file, HSTS settable from the environment, and no-store on student pages."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


class InlineStyleFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag == "style":
            self.problems.append(f"line {self.getpos()[0]}: <style> element")
        if any(name == "style" for name, _ in attrs):
            self.problems.append(f"line {self.getpos()[0]}: <{tag} style=...>")


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_styles(template):
    finder = InlineStyleFinder()
    finder.feed(template.read_text())
    assert finder.problems == [], f"{template.relative_to(TEMPLATES)}: {finder.problems} (use a class in app.css)"


def test_htmx_is_told_not_to_add_a_style_element():
    base = (TEMPLATES / "base.html").read_text()
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>""" in base


@pytest.mark.django_db
def test_every_page_carries_a_policy_without_inline_script_or_style(client, tenants):
    a, _ = tenants
    client.force_login(a.advisor)
    for url in (reverse("login"), reverse("dashboard", args=["alpha"]),
                reverse("student-detail", args=["alpha", a.students[0].pk]),
                reverse("student-list", args=["alpha"])):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_student_pages_exports_and_api_answers_are_never_stored(client, tenants):
    a, _ = tenants
    client.force_login(a.advisor)
    for url in (reverse("student-detail", args=["alpha", a.students[0].pk]), reverse("student-list", args=["alpha"]),
                reverse("caseload", args=["alpha"]) + "?export=csv", reverse("flagged-list", args=["alpha"]),
                f"/api/v1/institutions/alpha/students/{a.students[0].pk}/", "/api/v1/institutions/alpha/students/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"], url


@pytest.mark.django_db
def test_api_docs_load_their_script_from_a_file(client):
    page = client.get(reverse("api-docs"))
    assert page.status_code == 200
    html = page.content.decode()
    policy = directives(page["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert "<script>" not in html.replace(" ", "")  # every script has a src
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_HSTS_PRELOAD=True)
def test_hsts_is_sent_over_https_with_subdomains_and_preload(client):
    response = client.get(reverse("login"), secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in client.get(reverse("login"))


def _settings_with(**env) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", "import os; os.environ['DJANGO_SETTINGS_MODULE']='dropout_platform.settings';"
         "from django.conf import settings as s;"
         "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"],
        cwd=ROOT, env={**clean, "DJANGO_SECRET_KEY": "x" * 50, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_hsts_settings_come_from_the_environment():
    assert _settings_with() == ["0", "False", "False"]
    assert _settings_with(DJANGO_SECURE_HSTS_SECONDS="63072000", DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
                          DJANGO_SECURE_HSTS_PRELOAD="true") == ["63072000", "True", "True"]
