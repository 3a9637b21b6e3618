"""Migration operations that Django's own would do more expensively."""

from django.db import migrations, models


class DropInstitutionKeyIndex(migrations.AlterField):
    """``institution`` becomes ``ForeignKey(..., db_index=False)``: drops the key's single-column
    index and nothing else.

    Django's ``AlterField`` would also drop and re-add the foreign key constraint, which re-checks
    every row of the table under a lock (minutes on a large predictions table). Every tenant table
    keeps a full index led by ``institution`` (a test checks), so lookups by institution and the
    cascade when an institution is deleted still use an index.
    """

    def __init__(self, model_name: str):
        field = models.ForeignKey(
            "institutions.institution", on_delete=models.deletion.CASCADE, related_name="+", db_index=False
        )
        super().__init__(model_name=model_name, name="institution", field=field)

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        for name in schema_editor._constraint_names(
            model, ["institution_id"], index=True, unique=False, primary_key=False, type_=models.Index.suffix
        ):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[model._meta.get_field("institution")]))

    def describe(self):
        return f"Drop the single-column index of {self.model_name}.institution"


# --- The database-level tenancy guard (docs/tenancy.md, "Database-level guard") -----------------
#
# Their DDL is built from quoted identifiers of the models' tables and columns (and the role's
# name from the settings), never from input: hence the ``noqa: S608`` on the statements.
#
# Every tenant table gets row-level security (``TenantRowSecurity``) and every foreign key from a
# tenant table to another tenant table a composite key that includes the institution
# (``SameInstitutionLink``), so PostgreSQL itself refuses a row of one institution pointing at a
# row of another. A migration that creates a tenant table or such a key adds the operation too;
# ``tests/institutions/test_database_guard.py`` finds every table and key and fails on one
# without it.

RLS_POLICY = "tenant_isolation"


def _run(schema_editor, statement: str) -> None:
    # No parameters: the statements hold % of their own (format(), RAISE).
    schema_editor.execute(statement, None)


# Used by the policies: the scope's institution, NULL outside any scope (platform-level code).
CURRENT_INSTITUTION_FUNCTION = "app_current_institution"


def row_security_rule() -> str:
    """The policy's rule. The function is wrapped in a scalar subquery so that PostgreSQL evaluates
    it once per statement (an InitPlan), not once per row: a count over 10,000 students took
    10.2 ms with the bare call and 6.9 ms wrapped, against 3.2 ms as the owner (docs/benchmarks.md)."""
    current = f"(SELECT {CURRENT_INSTITUTION_FUNCTION}())"
    return f"({current} IS NULL OR institution_id = {current})"


def _name(table: str, suffix: str) -> str:
    from django.db.backends.utils import truncate_name

    return truncate_name(f"{table}_{suffix}", 63)


def _model(state, app_label: str, model_name: str):
    """``model_name`` is a model of the migration's app, or "app.Model" of any app."""
    if "." in model_name:
        app_label, model_name = model_name.split(".")
    return state.apps.get_model(app_label, model_name)


def same_institution_key_name(table: str) -> str:
    """The UNIQUE (institution_id, id) of a table other tenant tables point at."""
    return _name(table, "institution_id_key")


def same_institution_link_name(table: str, column: str) -> str:
    return _name(table, f"{column}_same_institution")


class SameInstitutionLink(migrations.operations.base.Operation):
    """``model_name.field_name`` points at a row of the same institution, checked by PostgreSQL.

    Adds ``UNIQUE (institution_id, id)`` to the target table (once) and the foreign key
    ``(institution_id, <column>) -> target (institution_id, id)``, deferred to the commit like
    Django's own keys (Django cascades and sets NULL itself, before that). A NULL column is not
    checked (MATCH SIMPLE). Where the single-column key is deliberately not enforced
    (``db_constraint=False``: bulk-written audit rows, the latest prediction's link), triggers
    check it instead (``trigger=True``): one set-based join per ``INSERT`` statement over the rows
    it wrote, and a per-row check on an ``UPDATE`` that moves the link; either refuses a row whose
    target belongs to another institution (a missing target stays unchecked, as before).
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, field_name: str, trigger: bool = False):
        self.model_name, self.field_name, self.trigger = model_name, field_name, trigger

    def deconstruct(self):
        kwargs = {"model_name": self.model_name, "field_name": self.field_name}
        if self.trigger:
            kwargs["trigger"] = True
        return self.__class__.__name__, [], kwargs

    def state_forwards(self, app_label, state):
        pass

    def _tables(self, app_label, state):
        model = _model(state, app_label, self.model_name)
        field = model._meta.get_field(self.field_name)
        return model._meta.db_table, field.column, field.related_model._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        table, column, target = self._tables(app_label, to_state)
        quote = schema_editor.quote_name
        name = same_institution_link_name(table, column)
        if self.trigger:
            self._create_triggers(schema_editor, table, column, target, name)
            return
        key = same_institution_key_name(target)
        # Once per target table (an earlier link may have added it).
        _run(schema_editor, f"DO $$ BEGIN ALTER TABLE {quote(target)} ADD CONSTRAINT {quote(key)} "
                            "UNIQUE (institution_id, id); "
                            "EXCEPTION WHEN duplicate_table OR duplicate_object THEN NULL; END $$")
        _run(schema_editor, f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} "
                            f"FOREIGN KEY (institution_id, {quote(column)}) "
                            f"REFERENCES {quote(target)} (institution_id, id) DEFERRABLE INITIALLY DEFERRED")

    @staticmethod
    def _create_triggers(schema_editor, table, column, target, name):
        """Inserts: one check per statement over its rows; updates: per row, only when the link moves.

        Like PostgreSQL's own key checks, they see every institution's rows.
        """
        quote = schema_editor.quote_name
        refuse = (f"RAISE EXCEPTION 'a row of {table} points at a row of {target} of another institution' "
                  f"USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}'")
        insert, update = quote(_name(name, "insert")), quote(_name(name, "update"))
        # As the owner, whom row-level security does not bind (the tables do not FORCE it): the
        # check must see the target row of the other institution that the writer's scope hides.
        definer = "SECURITY DEFINER SET search_path FROM CURRENT"
        _run(schema_editor,
            f"CREATE FUNCTION {insert}() RETURNS trigger LANGUAGE plpgsql {definer} AS $$ BEGIN "  # noqa: S608
            f"IF EXISTS (SELECT 1 FROM written JOIN {quote(target)} AS target ON target.id = written.{quote(column)} "
            f"WHERE target.institution_id <> written.institution_id) THEN {refuse}; END IF; RETURN NULL; END $$"
        )
        _run(schema_editor,
            f"CREATE TRIGGER {insert} AFTER INSERT ON {quote(table)} REFERENCING NEW TABLE AS written "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {insert}()"
        )
        _run(schema_editor,
            f"CREATE FUNCTION {update}() RETURNS trigger LANGUAGE plpgsql {definer} AS $$ BEGIN "  # noqa: S608
            f"IF EXISTS (SELECT 1 FROM {quote(target)} AS target WHERE target.id = NEW.{quote(column)} "
            f"AND target.institution_id <> NEW.institution_id) THEN {refuse}; END IF; RETURN NULL; END $$"
        )
        _run(schema_editor,
            f"CREATE TRIGGER {update} AFTER UPDATE ON {quote(table)} FOR EACH ROW "
            f"WHEN (NEW.{quote(column)} IS DISTINCT FROM OLD.{quote(column)} "
            f"OR NEW.institution_id IS DISTINCT FROM OLD.institution_id) EXECUTE FUNCTION {update}()"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        table, column, target = self._tables(app_label, from_state)
        quote = schema_editor.quote_name
        name = same_institution_link_name(table, column)
        if self.trigger:
            for kind in ("insert", "update"):
                _run(schema_editor, f"DROP TRIGGER IF EXISTS {quote(_name(name, kind))} ON {quote(table)}")
                _run(schema_editor, f"DROP FUNCTION IF EXISTS {quote(_name(name, kind))}()")
            return
        _run(schema_editor, f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(name)}")
        # The target's key goes with the last link that needs it.
        key = same_institution_key_name(target)
        _run(schema_editor, f"DO $$ BEGIN ALTER TABLE {quote(target)} DROP CONSTRAINT IF EXISTS {quote(key)}; "
                            "EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$")

    def describe(self):
        return f"{self.model_name}.{self.field_name} points only at rows of the same institution"


class TenantRowSecurity(migrations.operations.base.Operation):
    """Row-level security on a tenant table: the scope's institution sees and writes only its rows.

    The policy ``tenant_isolation`` shows a session whose ``app.institution_id`` names an
    institution only that institution's rows and refuses to write a row of another (the same test
    as ``WITH CHECK``); a session with no institution (platform-level code: beat, the sweeper, the
    staff admin, management commands) sees every row. The owner and superusers are not bound (no
    ``FORCE``: the owner's checks, ``SameInstitutionLink``'s triggers, must see every row); the
    application acts as a role that is neither (``institutions.db_roles``).
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        table = schema_editor.quote_name(_model(to_state, app_label, self.model_name)._meta.db_table)
        rule = row_security_rule()
        _run(schema_editor, f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        _run(schema_editor, f"CREATE POLICY {RLS_POLICY} ON {table} USING {rule} WITH CHECK {rule}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        table = schema_editor.quote_name(_model(from_state, app_label, self.model_name)._meta.db_table)
        _run(schema_editor, f"DROP POLICY IF EXISTS {RLS_POLICY} ON {table}")
        _run(schema_editor, f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Row-level security on {self.model_name}: one institution's rows per scope"


class ApplicationRole(migrations.operations.base.Operation):
    """The role the application acts as (``DATABASE_APP_ROLE``), its privileges, and the guard's functions.

    Creates the role (``NOLOGIN``; a production deployment may instead create it, or a login
    role that is a member of it, beforehand: then the migration needs no right to create roles)
    and grants it reading and writing every table and sequence of the schema, now and later
    (default privileges of the owner, who runs the migrations), but not owning, altering or
    truncating any. Also creates ``app_current_institution()``, which the policies read, and
    ``app_table_analyze(table, columns)``, through which the application refreshes a table's
    statistics after a bulk load (only an owner may ANALYZE).
    """

    reduces_to_sql = True
    reversible = True

    def deconstruct(self):
        return self.__class__.__name__, [], {}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        from django.conf import settings

        role = schema_editor.quote_name(settings.DATABASE_APP_ROLE)
        literal = settings.DATABASE_APP_ROLE.replace("'", "''")
        _run(schema_editor,
            "DO $$ BEGIN "  # noqa: S608
            f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{literal}') THEN "
            f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; END IF; "
            # Two databases of one server migrating at once: the other one created it.
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
        _run(schema_editor,
            "DO $$ BEGIN "
            f"EXECUTE format('GRANT USAGE ON SCHEMA %I TO {role}', current_schema()); "
            f"EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO {role}', "
            "current_schema()); "
            f"EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO {role}', current_schema()); "
            f"EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES "
            f"TO {role}', current_schema()); "
            f"EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES "
            f"TO {role}', current_schema()); "
            "END $$"
        )
        _run(schema_editor,
            f"CREATE FUNCTION {CURRENT_INSTITUTION_FUNCTION}() RETURNS bigint LANGUAGE sql STABLE "
            "AS $$ SELECT nullif(current_setting('app.institution_id', true), '')::bigint $$"
        )
        _run(schema_editor,
            "CREATE FUNCTION app_table_analyze(target regclass, columns text[]) RETURNS void LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path FROM CURRENT AS $$ BEGIN "
            "EXECUTE format('ANALYZE %s (%s)', target, "
            "(SELECT string_agg(quote_ident(name), ', ') FROM unnest(columns) AS name)); END $$"
        )
        _run(schema_editor, "REVOKE ALL ON FUNCTION app_table_analyze(regclass, text[]) FROM PUBLIC")
        _run(schema_editor, f"GRANT EXECUTE ON FUNCTION app_table_analyze(regclass, text[]) TO {role}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        from django.conf import settings

        role = schema_editor.quote_name(settings.DATABASE_APP_ROLE)
        _run(schema_editor, "DROP FUNCTION IF EXISTS app_table_analyze(regclass, text[])")
        _run(schema_editor, f"DROP FUNCTION IF EXISTS {CURRENT_INSTITUTION_FUNCTION}()")
        _run(schema_editor,
            "DO $$ BEGIN "
            f"EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM {role}', "
            "current_schema()); "
            f"EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM {role}', "
            "current_schema()); "
            f"EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM {role}', current_schema()); "
            f"EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {role}', current_schema()); "
            f"EXECUTE format('REVOKE ALL ON SCHEMA %I FROM {role}', current_schema()); "
            "END $$"
        )
        # The role itself stays: other databases of the server may use it.

    def describe(self):
        return "The application's database role, its privileges and the tenancy guard's functions"
