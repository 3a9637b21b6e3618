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

**Behind PgBouncer in transaction mode** (``DATABASE_POOL_MODE=transaction``; docs/operations.md,
"PgBouncer") a client's consecutive transactions may run on different server connections, and a
server connection serves many clients in turn: a session setting would follow the server
connection to the next client, with another institution in it. So nothing is set for the
session. The login must already be the application role (or a member of it, never a superuser
or a role that bypasses row-level security): checked once per connection, no ``SET ROLE``. The
institution is set with ``set_config(..., true)``, which lasts until the end of the transaction:
inside a transaction, before its first query and again whenever the scope changes; outside one
(autocommit, where each statement is its own transaction), as the first statement of the same
query string, which PostgreSQL runs as one transaction (:class:`_PooledScopeCursor`).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg2 import extensions, sql

from institutions.db_roles import INSTITUTION_SETTING, app_role, in_owner_session

_SET_INSTITUTION = sql.SQL("SELECT set_config({}, %s, false)").format(sql.Literal(INSTITUTION_SETTING))
_SET_INSTITUTION_LOCAL = sql.SQL("SELECT set_config({}, {}, true)")
_LOGIN_ROLE_CHECK = ("SELECT r.rolsuper OR r.rolbypassrls, pg_has_role(current_user, %s, 'MEMBER') "
                     "FROM pg_roles r WHERE r.rolname = current_user")
_UNKNOWN = object()
_IN_ERROR = extensions.TRANSACTION_STATUS_INERROR


def _scope_value() -> str:
    # Imported here: the backend is loaded before the apps (and their models) are ready.
    from institutions.scoping import current_institution

    institution = current_institution()
    return "" if institution is None else str(institution.pk)


def pooled_transactions() -> bool:
    """Whether connections go through a pooler in transaction mode (DATABASE_POOL_MODE)."""
    return getattr(settings, "DATABASE_POOL_MODE", "session") == "transaction"


def _set_local(wanted: str, cursor) -> str:
    return _SET_INSTITUTION_LOCAL.format(sql.Literal(INSTITUTION_SETTING), sql.Literal(wanted)).as_string(cursor)


class _PooledScopeCursor(extensions.cursor):
    """A cursor whose every statement runs with the scope's institution set for its transaction only."""

    wrapper = None  # the DatabaseWrapper, bound per connection in ``_pooled_cursor_class``

    def execute(self, query, vars=None):
        wrapper = self.wrapper
        if self.connection.autocommit:
            prefix = _set_local(_scope_value(), self) + "; "
            if isinstance(query, sql.Composable):
                query = query.as_string(self)
            query = prefix.encode() + query if isinstance(query, bytes) else prefix + query
        else:
            wrapper._pooled_transaction_scope(self)
        return super().execute(query, vars)

    def _in_one_transaction(self, run):
        """``run()`` (executemany, COPY: statements that take no prefix) in a transaction of its
        own that carries the scope, when the connection is in autocommit."""
        if not self.connection.autocommit:
            self.wrapper._pooled_transaction_scope(self)
            return run()
        super().execute("BEGIN; " + _set_local(_scope_value(), self))
        try:
            result = run()
        except BaseException:
            super().execute("ROLLBACK")
            raise
        super().execute("COMMIT")
        return result

    def executemany(self, query, vars_list):
        return self._in_one_transaction(lambda: super(_PooledScopeCursor, self).executemany(query, vars_list))

    def copy_expert(self, sql_, file, size=8192):
        return self._in_one_transaction(lambda: super(_PooledScopeCursor, self).copy_expert(sql_, file, size))


class DatabaseWrapper(base.DatabaseWrapper):
    # What this connection's app.institution_id holds, as far as it knows.
    _institution_setting = _UNKNOWN
    # Whether this connection acts as the app role (False: the owner, during migrate).
    acts_as_app_role = False

    # Pooled: what this transaction's app.institution_id holds (set with is_local).
    _transaction_setting = _UNKNOWN

    def init_connection_state(self):
        self._institution_setting = _UNKNOWN
        self._transaction_setting = _UNKNOWN
        self.acts_as_app_role = False
        if pooled_transactions():
            self._init_pooled_connection()
            return
        super().init_connection_state()
        role = app_role()
        if not role or self.alias == NO_DB_ALIAS or in_owner_session():
            return
        with self.connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if not self.get_autocommit():
            self.connection.commit()
        self.acts_as_app_role = True

    def _init_pooled_connection(self) -> None:
        self.connection.cursor_factory = type("PooledScopeCursor", (_PooledScopeCursor,), {"wrapper": self})
        super().init_connection_state()
        role = app_role()
        if not role or self.alias == NO_DB_ALIAS or in_owner_session():
            return
        with self.connection.cursor() as cursor:
            cursor.execute(_LOGIN_ROLE_CHECK, [role])
            bypasses, member = cursor.fetchone()
        if not self.get_autocommit():
            self.connection.commit()
        if bypasses or not member:
            raise ImproperlyConfigured(
                f"DATABASE_POOL_MODE=transaction: DATABASE_URL must log in as the application role {role!r} (or a "
                "member of it that is neither a superuser nor exempt from row-level security): a pooled "
                "connection cannot SET ROLE (docs/operations.md, \"PgBouncer\")")
        self.acts_as_app_role = True

    def _pooled_transaction_scope(self, cursor) -> None:
        """Inside a transaction: its app.institution_id follows the scope (is_local)."""
        wanted = _scope_value()
        if wanted != self._transaction_setting and cursor.connection.info.transaction_status != _IN_ERROR:
            extensions.cursor.execute(cursor, _set_local(wanted, cursor))
            self._transaction_setting = wanted

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._transaction_setting = _UNKNOWN

    def _set_autocommit(self, autocommit):
        self._transaction_setting = _UNKNOWN
        return super()._set_autocommit(autocommit)

    def create_cursor(self, name=None):
        if pooled_transactions():
            return super().create_cursor(name)
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
            self._institution_setting = self._transaction_setting = _UNKNOWN

    def _savepoint_rollback(self, sid):
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self._institution_setting = self._transaction_setting = _UNKNOWN

    def _close(self):
        self._institution_setting = self._transaction_setting = _UNKNOWN
        return super()._close()
