"""ml/ must stay pure Python: the web layer depends on it, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN_ROOTS = {"django", "rest_framework", "celery", "institutions", "students", "predictions",
                   "interventions", "dropout_platform"}
ML_DIR = Path(__file__).resolve().parents[2] / "ml"


def imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in {
            "import_module", "__import__"
        } and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def test_ml_package_never_imports_django_or_platform_apps():
    files = sorted(ML_DIR.rglob("*.py"))
    assert files, "ml/ has no Python files to check"
    offenders = {
        str(path.relative_to(ML_DIR.parent)): sorted(imported_roots(path.read_text()) & FORBIDDEN_ROOTS)
        for path in files
    }
    offenders = {path: roots for path, roots in offenders.items() if roots}
    assert offenders == {}


def test_import_checker_catches_all_import_forms():
    source = (
        "import django.db\nfrom students.models import Student\n"
        "import importlib\nimportlib.import_module('predictions.tasks')\n"
    )
    assert imported_roots(source) >= {"django", "students", "predictions"}
