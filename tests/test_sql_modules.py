"""Hand-written SQL lives only in the apps' ``sql`` modules, and there it keeps to one institution.

Every installed app of the project may have an ``<app>/sql.py``; the modules are found through
the app registry, so a new app's module is checked without changing this file. They follow the
convention written at the top of ``students/sql.py``: each statement is a module-level
UPPER_CASE ``psycopg2.sql`` composable, there is no public function that could build one the
test does not see, values are named parameters, and a statement that names a tenant table (the
table of a model with a foreign key to ``Institution``) binds ``%(institution_id)s``.
Outside those modules (and migrations) no app module hands SQL text to a cursor.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest
from django.apps import apps
from django.db import connection
from psycopg2 import sql as psycopg2_sql

from institutions.models import Institution

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Table maintenance names a whole table by nature; it returns no rows and changes none. The
# application runs ANALYZE, and asks the planner's estimate, through functions that run them as
# the owner (app_table_analyze, app_planned_rows: docs/tenancy.md, "Database-level guard").
MAINTENANCE = re.compile(r"\s*(ANALYZE\b|VACUUM\b|SELECT app_(table_analyze|planned_rows)\()", re.IGNORECASE)
SQL_IN_TEXT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|COPY|CREATE|DROP|ALTER|TRUNCATE|ANALYZE|SET)\s")
CURSOR_METHODS = {"execute", "executemany", "copy_expert", "mogrify"}


def _project_apps():
    """The installed apps whose source is this project's (not Django's or a library's)."""
    return [config for config in apps.get_app_configs()
            if Path(config.path).resolve() == (PROJECT_ROOT / config.name.replace(".", "/")).resolve()]


def _sql_modules() -> dict[str, ModuleType]:
    return {config.name: importlib.import_module(f"{config.name}.sql")
            for config in _project_apps() if (Path(config.path) / "sql.py").is_file()}


def _tenant_tables() -> set[str]:
    return {model._meta.db_table for model in apps.get_models()
            if any(field.is_relation and field.concrete and (field.many_to_one or field.one_to_one)
                   and field.related_model is Institution for field in model._meta.get_fields())}


def _statements(module: ModuleType) -> dict[str, psycopg2_sql.Composable]:
    return {name: value for name, value in vars(module).items()
            if not name.startswith("_") and name.isupper() and isinstance(value, psycopg2_sql.Composable)}


def _rendered() -> dict[str, str]:
    """Every statement of every sql module, as PostgreSQL receives it, by ``app.NAME``."""
    connection.ensure_connection()
    return {f"{app}.{name}": statement.as_string(connection.connection)
            for app, module in _sql_modules().items() for name, statement in _statements(module).items()}


def test_sql_modules_are_found_through_the_app_registry():
    assert {config.label for config in _project_apps()} >= {"institutions", "students"}
    on_disk = {path.parent.name for path in PROJECT_ROOT.glob("*/sql.py")}
    assert on_disk, "no <app>/sql.py found: the students app has one"
    assert set(_sql_modules()) == on_disk  # none outside an installed app, so none escapes the checks
    for app, module in _sql_modules().items():
        assert _statements(module), f"{app}/sql.py defines no statement as a module-level UPPER_CASE composable"


def test_tenant_tables_come_from_the_models_with_an_institution():
    tables = _tenant_tables()
    assert {"students_student", "students_studentchange", "institutions_job"} <= tables
    assert Institution._meta.db_table not in tables


def _binding_problem(text: str, tenant_tables: set[str]) -> str | None:
    """What is wrong with a rendered statement's hold on the institution (None: nothing)."""
    named = {table for table in tenant_tables if re.search(rf"\b{re.escape(table)}\b", text)}
    if not named or MAINTENANCE.match(text):
        return None
    unquoted = sorted(table for table in named if re.search(rf'(?<!"){re.escape(table)}\b', text))
    if unquoted:
        return f"writes {unquoted} as text: compose table names with sql.Identifier"
    if "%(institution_id)s" in text:
        return None
    return f"touches {sorted(named)} without binding %(institution_id)s"


@pytest.mark.parametrize("text, problem", [
    ('SELECT id FROM "students_student" WHERE institution_id = %(institution_id)s', None),
    ('SELECT id FROM "students_student" WHERE id = %(id)s', "without binding"),
    ('COPY "students_studentchange" (student_id, changes) FROM STDIN', "without binding"),
    ("SELECT id FROM students_student WHERE institution_id = %(institution_id)s", "as text"),
    ('ANALYZE "students_student" ("institution_id", "external_id")', None),
    ("SELECT app_table_analyze('students_student', ARRAY['institution_id'])", None),
    ("SELECT app_table_analyzer('students_student')", "as text"),
    ('TRUNCATE "import_student_stage"', None),  # a temporary stage is no tenant table
    ('SELECT 1 FROM "students_studentchange_archive"', None),  # another table whose name starts alike
])
def test_the_binding_check_finds_a_statement_that_ignores_the_institution(text, problem):
    found = _binding_problem(text, {"students_student", "students_studentchange"})
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.django_db
def test_every_statement_on_a_tenant_table_binds_the_institution():
    tenant_tables = _tenant_tables()
    problems = {name: _binding_problem(text, tenant_tables) for name, text in _rendered().items()}
    assert {name: problem for name, problem in problems.items() if problem} == {}
    on_tenant_tables = [name for name, text in _rendered().items()
                        if re.search("|".join(rf'"{re.escape(table)}"' for table in tenant_tables), text)]
    assert on_tenant_tables, "no statement on a tenant table was found: the enumeration is broken"


@pytest.mark.django_db
def test_statements_take_values_as_named_parameters_only():
    for name, text in _rendered().items():
        positional = re.findall(r"%[^(%]", text)
        assert not positional, f"{name} has positional placeholders {positional}: use %(name)s"


def _module_level_problems(source: str) -> list[str]:
    """Public functions (a statement built by one would escape the checks) and SQL held in str."""
    problems = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            problems.append(f"public {node.name} (make it private; expose its statements as constants)")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and SQL_IN_TEXT.match(value.value):
                problems.append(f"line {node.lineno}: SQL in a str (wrap it in sql.SQL)")
    return problems


@pytest.mark.parametrize("source, expected", [
    ("def _rank(x):\n    return x\nLATEST = 1\n", 0),
    ("def statement_for(table):\n    return table\n", 1),
    ("class Statements:\n    pass\n", 1),
    ('STORE = "INSERT INTO t VALUES (1)"\n', 1),
    ('STAGE_COLUMNS = ("student_id", "risk")\nLABEL = "Set by the import"\n', 0),
])
def test_the_module_check_finds_what_would_escape_the_statement_checks(source, expected):
    assert len(_module_level_problems(source)) == expected


def test_sql_modules_expose_statements_as_constants_only():
    for app in _sql_modules():
        path = PROJECT_ROOT / app / "sql.py"
        assert _module_level_problems(path.read_text()) == [], app


def _is_text(node: ast.expr, text_names: set[str]) -> bool:
    """Whether an expression is SQL text: a str, an f-string, str arithmetic or formatting, or a
    name assigned such a value in the same module."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _is_text(node.left, text_names) or _is_text(node.right, text_names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"format", "join"}:
        return _is_text(node.func.value, text_names)
    if isinstance(node, ast.Name):
        return node.id in text_names
    if isinstance(node, ast.List | ast.Tuple | ast.Dict):
        return any(_is_text(item, text_names) for item in (node.values if isinstance(node, ast.Dict) else node.elts))
    return False


def _sql_text_calls(source: str) -> list[int]:
    """Lines that hand SQL text to a cursor (``execute``, ``executemany``, ``copy_expert``,
    ``mogrify``), to Django (``RawSQL``, ``.raw``, ``.extra``), or compose it (``sql.SQL``)."""
    tree = ast.parse(source)
    text_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_text(node.value, set()):
            text_names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else None
        name = method or (func.id if isinstance(func, ast.Name) else None)
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        if name == "SQL":  # composing SQL is writing it
            lines.append(node.lineno)
            continue
        if method in CURSOR_METHODS or method == "raw" or name == "RawSQL":
            statements = arguments[:1]  # the statement comes first (positional or by keyword)
        elif method == "extra":
            statements = arguments  # select=, where=, tables=, order_by=: all SQL
        else:
            continue
        if any(_is_text(statement, text_names) for statement in statements):
            lines.append(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize("source, expected", [
    ('cursor.execute("SELECT 1")\n', [1]),
    ('cursor.execute(f"SELECT * FROM {table}")\n', [1]),
    ('cursor.execute("SELECT " + columns, [1])\n', [1]),
    ('cursor.execute("SELECT {}".format(c))\n', [1]),
    ('query = "DELETE FROM t WHERE id = %s"\n\ndef f(c):\n    c.execute(query, [1])\n', [4]),
    ('cursor.copy_expert(f"COPY {t} FROM STDIN", handle)\n', [1]),
    ('cursor.executemany(sql="INSERT INTO t VALUES (%s)", seq_of_parameters=[])\n', [1]),
    ('Student.objects.annotate(x=RawSQL("SELECT 1", []))\n', [1]),
    ('Student.objects.raw("SELECT * FROM students_student")\n', [1]),
    ('Student.objects.extra(where=["institution_id = 1"])\n', [1]),
    ('statement = sql.SQL("SELECT {}").format(sql.Identifier("id"))\n', [1]),
    ("cursor.execute(sql.STUDENTS_STORED, params)\ncursor.copy_expert(sql.NEW_STAGE_COPY, reader)\n", []),
    ("statement = choose()\ncursor.execute(statement, params)\n", []),
    ('executor.execute(task)\nlogger.info("SELECT is a word")\n', []),
])
def test_the_text_check_finds_sql_handed_to_a_cursor(source, expected):
    assert _sql_text_calls(source) == expected


def test_no_app_module_outside_its_sql_module_hands_sql_text_to_the_database():
    offenders = []
    for config in _project_apps():
        for path in sorted(Path(config.path).rglob("*.py")):
            if path.name == "sql.py" or "migrations" in path.relative_to(config.path).parts:
                continue
            offenders += [f"{path.relative_to(PROJECT_ROOT)}:{line}" for line in _sql_text_calls(path.read_text())]
    assert offenders == [], "hand-written SQL belongs in the app's sql.py: " + ", ".join(offenders)
