"""Django's PostgreSQL backend plus the database-level tenancy guard (docs/tenancy.md).

Two things happen on every connection of the application (web, workers, beat, management
commands other than ``migrate``):

- **The application role.** Right after connecting, the session switches to
  ``DATABASE_APP_ROLE`` (``SET ROLE dropout_app`` by default; a no-op when it logged in as that
  role). That role owns no table, so PostgreSQL's row-level security applies to it. The owner of
  the tables is used only by ``migrate`` and by the creation of test databases
  (``institutions.db_roles.owner_session``, entered by ``institutions/management/commands/migrate.py``),
  and by the server-level connection that creates a database (Django's "no database" alias).
- **The institution of the scope.** Before each query the session setting ``app.institution_id``
  is brought in line with the current ``institution_scope`` (its id, or empty outside any scope),
  with ``set_config`` only when it differs from what this connection last set: a request pays one
  extra statement when its scope begins, none per query. The policies
  (``institutions.migration_operations.TenantRowSecurity``) show a session whose setting names an
  institution only that institution's rows, and let it write no other.

A rollback undoes a ``set_config`` made inside the rolled-back transaction or savepoint, so
after one the connection forgets what it set and sets it again before the next query.
"""

from __future__ import annotations

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg2 import extensions, sql

from institutions.db_roles import INSTITUTION_SETTING, app_role, in_owner_session

_SET_INSTITUTION = sql.SQL("SELECT set_config({}, %s, false)").format(sql.Literal(INSTITUTION_SETTING))
_UNKNOWN = object()
_IN_ERROR = extensions.TRANSACTION_STATUS_INERROR


def _scope_value() -> str:
    # Imported here: the backend is loaded before the apps (and their models) are ready.
    from institutions.scoping import current_institution

    institution = current_institution()
    return "" if institution is None else str(institution.pk)


class DatabaseWrapper(base.DatabaseWrapper):
    # What this connection's app.institution_id holds, as far as it knows.
    _institution_setting = _UNKNOWN
    # Whether this connection acts as the app role (False: the owner, during migrate).
    acts_as_app_role = False

    def init_connection_state(self):
        super().init_connection_state()
        self._institution_setting = _UNKNOWN
        self.acts_as_app_role = False
        role = app_role()
        if not role or self.alias == NO_DB_ALIAS or in_owner_session():
            return
        with self.connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if not self.get_autocommit():
            self.connection.commit()
        self.acts_as_app_role = True

    def create_cursor(self, name=None):
        wanted = _scope_value()
        # Not in a failed transaction: what comes next there is a rollback (or an error anyway).
        if wanted != self._institution_setting and self.connection.info.transaction_status != _IN_ERROR:
            with self.wrap_database_errors, self.connection.cursor() as cursor:
                cursor.execute(_SET_INSTITUTION, [wanted])
            self._institution_setting = wanted
        return super().create_cursor(name)

    # What a rollback may have undone is forgotten once it is done.
    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._institution_setting = _UNKNOWN

    def _savepoint_rollback(self, sid):
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self._institution_setting = _UNKNOWN

    def _close(self):
        self._institution_setting = _UNKNOWN
        return super()._close()
