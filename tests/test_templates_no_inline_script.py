"""Templates carry no inline JavaScript, so a Content-Security-Policy can forbid it: every
``<script>`` loads a file (``src``, nothing between the tags) and no element has an ``on*=``
event-handler attribute or a ``javascript:`` URL. Data reaches the scripts through
``json_script`` or ``data-`` attributes; the scripts live in ``static/js/``."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class InlineScriptFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"line {self.getpos()[0]}: <{tag} {name}=...> is an inline event handler")
            if (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"line {self.getpos()[0]}: <{tag} {name}=\"javascript:...\">")
        if tag == "script":
            self._in_script = True
            if not dict(attrs).get("src"):
                self.problems.append(f"line {self.getpos()[0]}: <script> without src")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"line {self.getpos()[0]}: code between <script> tags")


def inline_script_problems(source: str) -> list[str]:
    finder = InlineScriptFinder()
    finder.feed(source)
    finder.close()
    return finder.problems


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_has_no_inline_javascript(path):
    assert inline_script_problems(path.read_text()) == []


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>",
    '<script type="module">import "x";</script>',
    '<script src="{% static \'js/app.js\' %}">alert(1)</script>',
    '<form onsubmit="return confirm(\'Sure?\')"></form>',
    '<input ONFOCUS="this.select()">',
    '<a href="javascript:void(0)">x</a>',
])
def test_inline_javascript_is_detected(source):
    assert inline_script_problems(source) != []


@pytest.mark.parametrize("source", [
    '<script src="{% static \'js/app.js\' %}" defer></script>',
    '{{ chart_data|json_script:"dashboard-data" }}',
    '<form data-confirm="Remove {{ m.user.username }}?"></form>',
    '<input data-select-on-focus value="{{ raw_key }}">',
])
def test_external_scripts_and_data_attributes_pass(source):
    assert inline_script_problems(source) == []
