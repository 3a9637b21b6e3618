"""The hand-written SQL of the access audit trail (the convention: top of ``students/sql.py``).

:data:`ACCESS_ENTRY_INSERT` writes one entry in one round trip and lets that one statement's
commit skip the wait for the disk (``synchronous_commit`` off for its own transaction only): a
synchronous commit costs 4-7 ms here, more than the whole budget the trail has on a page
(docs/privacy.md says what this trades). The other statements call the maintenance functions of
``migrations/0001_initial.py``, the only way past the append-only trigger.
"""

from __future__ import annotations

from psycopg2 import sql

from .models import AccessEntry

INSERTED_FIELDS = ("institution_id", "created_at", "action", "actor_user_id", "actor_name", "api_key_id",
                   "student_id", "object_id", "filters", "result_count", "ip_address")
_CASTS = {"filters": "jsonb", "ip_address": "inet"}


def _value(name: str) -> sql.Composable:
    placeholder = sql.Placeholder(name)
    return sql.SQL("{}::{}").format(placeholder, sql.SQL(_CASTS[name])) if name in _CASTS else placeholder


def _insert(source: str) -> sql.Composed:
    return sql.SQL("INSERT INTO {table} ({columns}) SELECT {values}" + source).format(
        table=sql.Identifier(AccessEntry._meta.db_table),
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in INSERTED_FIELDS),
        values=sql.SQL(", ").join(_value(name) for name in INSERTED_FIELDS),
    )


# A statement of its own (autocommit): its commit does not wait for the disk.
ACCESS_ENTRY_INSERT = _insert(" FROM (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_waiting")
# Inside a caller's transaction (an erasure, say): the caller's commit keeps its own durability.
ACCESS_ENTRY_INSERT_IN_TRANSACTION = _insert("")

ACCESS_ENTRIES_EXPIRE = sql.SQL("SELECT audit_access_entries_expire(%(institution_id)s, %(before)s)")
ACCESS_ENTRIES_UNLINK_STUDENT = sql.SQL(
    "SELECT audit_access_entries_unlink_student(%(institution_id)s, %(student_id)s)"
)
ACCESS_ENTRIES_REMOVE_INSTITUTION = sql.SQL("SELECT audit_access_entries_remove_institution(%(institution_id)s)")
