"""PostgreSQL is the only engine: no code path of the product asks which database it runs on,
and a deployment pointed at another engine is refused at start-up with a message."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ["dropout_platform", "institutions", "students", "predictions", "interventions", "workspace", "ml"]


def _product_modules():
    for package in PRODUCT_PACKAGES:
        yield from sorted((PROJECT_ROOT / package).rglob("*.py"))


def _asks_for_the_engine(source: str) -> list[int]:
    """Lines that read ``<something>.vendor`` (Django's name for the engine) or configure SQLite."""
    def names_the_engine(node) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr == "vendor"
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and (
            "backends.sqlite" in node.value or node.value.startswith("sqlite:")
        )

    return [node.lineno for node in ast.walk(ast.parse(source)) if names_the_engine(node)]


@pytest.mark.parametrize("source, expected", [
    ("if connection.vendor == 'postgresql':\n    pass\n", [1]),
    ("ENGINE = 'django.db.backends.sqlite3'\n", [1]),
    ("connection.ops.quote_name('x')\n", []),
    ("KIND = 'an SQLite database'\n", []),  # naming a file type someone uploaded is not a branch
])
def test_the_engine_check_finds_a_vendor_branch(source, expected):
    assert _asks_for_the_engine(source) == expected


def test_no_product_module_branches_on_the_database_engine():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}"
        for path in _product_modules()
        for line in _asks_for_the_engine(path.read_text())
    ]
    assert offenders == []


def test_the_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_a_database_url_of_another_engine_is_refused_with_a_message():
    env = {**os.environ, "DATABASE_URL": "sqlite:///db.sqlite3", "DJANGO_SETTINGS_MODULE": "dropout_platform.settings",
           "DJANGO_SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
