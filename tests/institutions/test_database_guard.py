"""The database-level tenancy guard (docs/tenancy.md, "Database-level guard").

PostgreSQL itself keeps institutions apart, beside the application's scoping: the application
acts as a role that owns no table, every table with an ``institution_id`` has row-level security
keyed on the scope's institution, and every link from one tenant table to another is a
composite key (or, where the key is deliberately not enforced, a trigger) that includes the
institution. The tables and links are found from the database and the models, so a new tenant
table or link without the guard fails here.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import uuid

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, ProgrammingError, connection, models, transaction
from django.utils import timezone

from institutions.migration_operations import RLS_POLICY, same_institution_link_name
from institutions.models import Institution
from institutions.scoping import TenantModel, institution_scope
from students.models import Student

from ..factories import UserFactory

User = get_user_model()
TENANT_MODELS = [model for model in apps.get_models() if issubclass(model, TenantModel)]
# Every link from a tenant table to another tenant table (not to Institution, not to users).
LINKS = [
    (model, field) for model in TENANT_MODELS for field in model._meta.concrete_fields
    if isinstance(field, models.ForeignKey) and field.name != "institution"
    and issubclass(field.related_model, TenantModel)
]


def _link_id(link) -> str:
    model, field = link
    return f"{model._meta.label}.{field.name}"


def _fetch(statement: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _tables_with_an_institution() -> set[str]:
    return {row[0] for row in _fetch(
        "SELECT c.table_name FROM information_schema.columns AS c JOIN information_schema.tables AS t "
        "USING (table_schema, table_name) WHERE c.table_schema = current_schema() "
        "AND c.column_name = 'institution_id' AND t.table_type = 'BASE TABLE'"
    )}


# --- the role ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_application_acts_as_a_role_that_owns_no_table_and_row_security_binds():
    (user, superuser, bypass), = _fetch(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert user == settings.DATABASE_APP_ROLE
    assert not superuser and not bypass
    owned = _fetch("SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = "
                   "current_user) AND relnamespace = current_schema()::regnamespace AND relpersistence = 'p'")
    assert owned == []


@pytest.mark.django_db
def test_the_application_role_cannot_alter_truncate_or_drop_a_tenant_table():
    for statement in ("ALTER TABLE students_student DISABLE ROW LEVEL SECURITY", "TRUNCATE students_student",
                      "DROP POLICY tenant_isolation ON students_student"):
        with pytest.raises(ProgrammingError, match=r"must be owner|permission denied"), transaction.atomic():
            _fetch(statement)


# --- row-level security ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_every_tenant_model_has_a_table_with_an_institution_column():
    assert {model._meta.db_table for model in TENANT_MODELS} <= _tables_with_an_institution()


@pytest.mark.django_db
def test_every_table_with_an_institution_has_row_level_security_and_the_policy():
    tables = _tables_with_an_institution()
    assert len(tables) >= 20
    guarded = dict(_fetch(
        "SELECT c.relname, c.relrowsecurity FROM pg_class AS c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relname = ANY(%s)", [sorted(tables)]))
    policies = {row[0] for row in _fetch(
        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() AND policyname = %s "
        "AND cmd = 'ALL' AND qual LIKE '%%app_current_institution()%%' "
        "AND with_check LIKE '%%app_current_institution()%%'", [RLS_POLICY])}
    assert sorted(table for table in tables if not guarded.get(table)) == [], "no row-level security"
    assert sorted(tables - policies) == [], f"no {RLS_POLICY} policy (institutions.migration_operations)"


@pytest.mark.django_db
def test_a_deliberately_unscoped_raw_query_inside_one_institutions_scope_gets_no_row_of_another(tenants):
    a, b = tenants
    everything = _fetch("SELECT DISTINCT institution_id FROM students_student ORDER BY 1")
    assert everything == sorted([(a.institution.pk,), (b.institution.pk,)])  # outside any scope: platform level
    with institution_scope(a.institution):
        assert _fetch("SELECT DISTINCT institution_id FROM students_student") == [(a.institution.pk,)]
        assert _fetch("SELECT count(*) FROM students_student WHERE institution_id = %s", [b.institution.pk]) == [(0,)]
        assert _fetch("SELECT DISTINCT institution_id FROM institutions_membership") == [(a.institution.pk,)]
        assert _fetch("SELECT count(*) FROM students_featuredefinition WHERE institution_id <> %s",
                      [a.institution.pk]) == [(0,)]
    with institution_scope(b.institution):
        assert _fetch("SELECT DISTINCT institution_id FROM students_student") == [(b.institution.pk,)]
    assert _fetch("SELECT DISTINCT institution_id FROM students_student ORDER BY 1") == everything


@pytest.mark.django_db
def test_inside_one_institutions_scope_a_raw_write_cannot_reach_or_create_a_row_of_another(tenants):
    a, b = tenants
    other = b.students[0]
    with institution_scope(a.institution):
        with connection.cursor() as cursor:
            cursor.execute("UPDATE students_student SET name = 'changed' WHERE id = %s", [other.pk])
            assert cursor.rowcount == 0
            cursor.execute("DELETE FROM students_student WHERE institution_id = %s", [b.institution.pk])
            assert cursor.rowcount == 0
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            _fetch("UPDATE students_student SET institution_id = %s WHERE id = %s RETURNING id",
                   [b.institution.pk, a.students[0].pk])
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            _fetch("INSERT INTO students_student (institution_id, external_id, name, email, program, cohort, status, "
                   "outcome, features, created_at, updated_at) SELECT %s, 'SNEAK', name, email, program, cohort, "
                   "status, outcome, features, now(), now() FROM students_student WHERE id = %s",
                   [b.institution.pk, a.students[0].pk])
    other.refresh_from_db()
    assert other.name != "changed"
    assert not Student.objects.for_institution(b.institution).filter(external_id="SNEAK").exists()


@pytest.mark.django_db
def test_the_scope_setting_follows_nested_scopes_and_rollbacks(tenants):
    a, b = tenants

    def seen():
        return _fetch("SELECT current_setting('app.institution_id', true)")[0][0] or ""

    assert seen() == ""
    with institution_scope(a.institution):
        assert seen() == str(a.institution.pk)
        with institution_scope(b.institution):
            assert seen() == str(b.institution.pk)
        assert seen() == str(a.institution.pk)
        with pytest.raises(DataError), transaction.atomic(), institution_scope(b.institution):
            assert seen() == str(b.institution.pk)
            _fetch("SELECT 1 / 0")
        # The savepoint's rollback undid the set_config of B's scope: the connection set A's again.
        assert seen() == str(a.institution.pk)
        assert _fetch("SELECT DISTINCT institution_id FROM students_student") == [(a.institution.pk,)]
    assert seen() == ""


@pytest.mark.django_db
def test_a_tenant_orm_read_inside_a_scope_sees_the_same_rows_as_before(tenants):
    a, _ = tenants
    with institution_scope(a.institution):
        assert sorted(Student.objects.values_list("external_id", flat=True)) == [f"S{i:03d}" for i in range(1, 7)]


# --- same-institution links -----------------------------------------------------------------------

def test_the_links_between_tenant_tables_are_found_from_the_models():
    found = {_link_id(link) for link in LINKS}
    assert {"interventions.Intervention.student", "predictions.Prediction.job",
            "students.StudentChange.student", "predictions.LatestPrediction.prediction"} <= found


@pytest.mark.django_db
@pytest.mark.parametrize("link", LINKS, ids=_link_id)
def test_every_link_between_tenant_tables_is_checked_by_the_database(link):
    model, field = link
    table, column = model._meta.db_table, field.column
    name = same_institution_link_name(table, column)
    keys = _fetch(
        "SELECT array(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY AS k(n, i) "
        "JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i), confrelid::regclass::text, "
        "array(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY AS k(n, i) "
        "JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.n ORDER BY k.i) "
        "FROM pg_constraint AS con WHERE con.contype = 'f' AND con.conrelid = %s::regclass AND con.conname = %s",
        [table, name])
    triggers = {row[0] for row in _fetch(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname LIKE %s", [table, f"{name}%"])}
    target = field.related_model._meta.db_table
    if field.db_constraint:
        assert keys == [(["institution_id", column], target, ["institution_id", "id"])], (
            f"add SameInstitutionLink({model._meta.label!r}, {field.name!r}) to a migration")
    else:
        assert len(triggers) == 2, f"add SameInstitutionLink({model._meta.label!r}, {field.name!r}, trigger=True)"


class _Rows:
    """One row of any tenant model in an institution, built from the model's fields alone."""

    def __init__(self):
        self.made, self.counter = {}, itertools.count(1)

    def value(self, field):
        n = next(self.counter)
        if field.choices:
            return field.choices[0][0]
        if isinstance(field, models.BooleanField):
            return False
        if isinstance(field, models.DateTimeField):
            return timezone.now()
        if isinstance(field, models.DateField):
            return datetime.date(2026, 1, 1)
        if isinstance(field, models.DecimalField):
            return decimal.Decimal("0.5")
        if isinstance(field, models.FloatField):
            return 0.5
        if isinstance(field, models.IntegerField):
            return 1
        if isinstance(field, models.JSONField):
            return {}
        if isinstance(field, models.UUIDField):
            return uuid.uuid4()
        if isinstance(field, models.BinaryField):
            return b"x"
        if isinstance(field, models.EmailField):
            return f"row{n}@example.edu"
        if isinstance(field, models.CharField | models.TextField):
            return f"r{n}"[: field.max_length or 10]
        raise AssertionError(f"no test value for {field.model.__name__}.{field.name} ({type(field).__name__})")

    def of(self, model, institution: Institution):
        key = (model, institution.pk)
        if key not in self.made:
            values = {"institution": institution}
            for field in model._meta.concrete_fields:
                if field.primary_key or field.name == "institution" or field.has_default() or field.null \
                        or getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                    continue
                if field.is_relation:
                    related = field.related_model
                    values[field.name] = UserFactory() if related is User else self.of(related, institution)
                else:
                    values[field.name] = self.value(field)
            self.made[key] = model._base_manager.create(**values)
        return self.made[key]


@pytest.mark.django_db
@pytest.mark.parametrize("link", LINKS, ids=_link_id)
def test_a_raw_update_linking_a_row_to_another_institutions_row_is_refused(tenants, link):
    a, b = tenants
    model, field = link
    rows = _Rows()
    row, own, foreign = rows.of(model, a.institution), rows.of(field.related_model, a.institution), \
        rows.of(field.related_model, b.institution)
    table, column = model._meta.db_table, field.column
    statement = f'UPDATE "{table}" SET "{column}" = %s WHERE id = %s'
    with transaction.atomic():
        _fetch("SET CONSTRAINTS ALL IMMEDIATE")
        with connection.cursor() as cursor:
            cursor.execute(statement, [own.pk, row.pk])  # the same institution's row: accepted
        with pytest.raises(IntegrityError) as refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [foreign.pk, row.pk])
    assert refused.value.__cause__.diag.constraint_name == same_institution_link_name(table, column)


@pytest.mark.django_db
def test_a_raw_insert_of_an_audit_row_pointing_at_another_institutions_student_is_refused(tenants):
    a, b = tenants
    insert = ("INSERT INTO students_studentchange (institution_id, student_id, source, created, changes, changed_at) "
              "SELECT %s, id, 'api', FALSE, '{}', now() FROM students_student WHERE id = ANY(%s)")
    with connection.cursor() as cursor:
        cursor.execute(insert, [a.institution.pk, [student.pk for student in a.students]])
        assert cursor.rowcount == 6
    with pytest.raises(IntegrityError, match="another institution"), transaction.atomic():
        _fetch(insert + " RETURNING 1", [a.institution.pk, [a.students[0].pk, b.students[0].pk]])
