"""The apps depend on each other in one direction only (DESIGN.md section 2):

    institutions <- audit <- students <- courses <- predictions <- interventions <- privacy <- workspace
        <- demo (the demo institutions' builder, which fills every app below it)

A lower app never imports a higher one, neither at module level nor inside a function, nor through
``importlib.import_module``, ``apps.get_model`` or a lazy ``"app.Model"`` relation. Only
``predictions`` imports ``ml``, and ``ml`` imports none of the apps, nor Django or its companions:
it stays plain Python that the web layer uses, never the other way round. ``dropout_platform``
(settings, URLs, Celery app) sits above everything: it may import any app and no app imports it;
``workspace`` is imported by nothing but its URLs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["institutions", "audit", "students", "courses", "predictions", "interventions", "privacy", "workspace",
          "demo"]
RANK = {app: rank for rank, app in enumerate(LAYERS)}
ML_MAY_BE_IMPORTED_BY = {"predictions"}
ML_FORBIDDEN_ROOTS = {"django", "rest_framework", "drf_spectacular", "django_filters", "celery", "kombu",
                      "dropout_platform", *LAYERS}
RELATION_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


def _call_name(node: ast.Call) -> str:
    return getattr(node.func, "attr", getattr(node.func, "id", ""))


def _first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def imported_roots(source: str, *, module: str) -> set[str]:
    """The top-level packages a module depends on, ``module`` being its dotted name (for relative imports)."""
    package = module.split(".")[:-1]  # what a relative import starts from (foo/__init__.py: foo)
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                roots.add((node.module or "").split(".")[0])
            else:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                roots.add((base or [node.module or ""])[0])
        elif isinstance(node, ast.Call):
            name, first = _call_name(node), _first_string(node)
            if first is None:
                continue
            # import_module("app.x"), apps.get_model("app", "Model") or ("app.Model"), ForeignKey("app.Model")
            if name in {"import_module", "__import__", "get_model"} or (name in RELATION_FIELDS and "." in first):
                roots.add(first.split(".")[0])
    roots.discard("")
    return roots


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def layering_violations(app: str, roots: set[str]) -> set[str]:
    """What ``app`` may not depend on among ``roots``."""
    above = {other for other in LAYERS if RANK[other] > RANK[app]}
    # dropout_platform (settings, URLs, Celery app) is above every app: apps read settings via django.conf.
    forbidden = above | {"dropout_platform"} | ({"ml"} if app not in ML_MAY_BE_IMPORTED_BY else set())
    return roots & forbidden


def test_every_layer_and_ml_exist():
    for package in [*LAYERS, "ml"]:
        assert python_files(package), f"{package}/ has no Python files: is the layering list out of date?"


@pytest.mark.parametrize("app", LAYERS)
def test_app_never_imports_a_higher_app_and_only_predictions_imports_ml(app):
    offenders = {}
    for path in python_files(app):
        bad = layering_violations(app, imported_roots(path.read_text(), module=module_name(path)))
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_ml_imports_neither_django_nor_any_app():
    offenders = {}
    for path in python_files("ml"):
        bad = imported_roots(path.read_text(), module=module_name(path)) & ML_FORBIDDEN_ROOTS
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_project_package_imports_workspace_only_in_its_urls_and_never_ml():
    offenders = {}
    for path in python_files("dropout_platform"):
        roots = imported_roots(path.read_text(), module=module_name(path))
        bad = (roots & {"ml"}) | (roots & {"workspace"} if path.name != "urls.py" else set())
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


# --- the checker itself catches every form, on synthetic sources ------------------------------

@pytest.mark.parametrize(("app", "module", "source", "violation"), [
    ("students", "students.services", "from predictions.models import Prediction\n", "predictions"),
    ("students", "students.services", "import predictions.selectors\n", "predictions"),
    ("students", "students.services",
     "def later():\n    from interventions.services import flag_raise\n    return flag_raise\n", "interventions"),
    ("institutions", "institutions.jobs",
     "import importlib\nimportlib.import_module('students.tasks')\n", "students"),
    ("predictions", "predictions.migrations.0009_x",
     "def forwards(apps, schema_editor):\n    apps.get_model('interventions', 'Flag')\n", "interventions"),
    ("students", "students.models",
     "from django.db import models\nflag = models.ForeignKey('interventions.Flag', on_delete=models.CASCADE)\n",
     "interventions"),
    ("interventions", "interventions.views", "from workspace.selectors import worklist_students\n", "workspace"),
    ("interventions", "interventions.selectors", "from ml.trained_model import TrainedModel\n", "ml"),
    ("students", "students.api", "from dropout_platform.api_errors import error_body\n", "dropout_platform"),
])
def test_layering_checker_catches_an_upward_import(app, module, source, violation):
    assert layering_violations(app, imported_roots(source, module=module)) == {violation}


@pytest.mark.parametrize(("app", "module", "source"), [
    ("workspace", "workspace.views", "from interventions import selectors\nfrom predictions.selectors import x\n"),
    ("predictions", "predictions.model_store", "from ml.trained_model import TrainedModel\n"),
    ("predictions", "predictions.services.scoring", "from ..models import Prediction\nfrom . import chunks\n"),
    ("interventions", "interventions.services", "from institutions.models import Institution\n"),
])
def test_layering_checker_allows_downward_and_relative_imports(app, module, source):
    assert layering_violations(app, imported_roots(source, module=module)) == set()


def test_ml_checker_catches_django_and_app_imports():
    source = "import django.db\nfrom students.models import Student\nimport importlib\n" \
             "importlib.import_module('predictions.tasks')\n"
    assert imported_roots(source, module="ml.training") & ML_FORBIDDEN_ROOTS == {"django", "students", "predictions"}
