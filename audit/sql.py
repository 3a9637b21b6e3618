"""The hand-written SQL of the access audit trail (the convention: top of ``students/sql.py``).

:data:`ACCESS_ENTRIES_INSERT_BATCH` writes the entries waiting in a process's batch
(audit.batching) in one statement and lets that statement's commit skip the wait for the disk
(``synchronous_commit`` off for its own transaction only): a synchronous commit costs 4-7 ms here,
more than the whole budget the trail has on a page (docs/privacy.md says what this trades).
The other statements call the maintenance functions of
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


# Inside a caller's transaction (an erasure, say): the caller's commit keeps its own durability.
ACCESS_ENTRY_INSERT_IN_TRANSACTION = sql.SQL("INSERT INTO {table} ({columns}) SELECT {values}").format(
    table=sql.Identifier(AccessEntry._meta.db_table),
    columns=sql.SQL(", ").join(sql.Identifier(name) for name in INSERTED_FIELDS),
    values=sql.SQL(", ").join(_value(name) for name in INSERTED_FIELDS),
)

# Outside a transaction, entries in one statement (audit.batching; one or many): each field is
# an array of the entries' values (``%(institution_id)s`` holds every entry's institution, and so
# on), unnested into rows. An entry keeps its student only if the student still exists (one erased
# while the entry waited is not linked again), and the commit does not wait for the disk.
# ``{students}`` is the table whose rows entries name: the students app says which
# (audit.batching.link_entries_to_students), this app sitting below it.
_ARRAY_TYPES = {"institution_id": "bigint", "created_at": "timestamptz", "action": "text", "actor_user_id": "bigint",
                "actor_name": "text", "api_key_id": "bigint", "student_id": "bigint", "object_id": "bigint",
                "filters": "text", "result_count": "integer", "ip_address": "text"}
_ENTRY_COLUMNS = sql.SQL(", ").join(sql.Identifier(name) for name in INSERTED_FIELDS)
_ENTRIES = sql.SQL("unnest({}) AS entry ({})").format(
    sql.SQL(", ").join(sql.SQL("{}::{}[]").format(sql.Placeholder(name), sql.SQL(_ARRAY_TYPES[name]))
                       for name in INSERTED_FIELDS),
    _ENTRY_COLUMNS,
)
_WITHOUT_WAITING = sql.SQL(
    "CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_waiting"
)


def _entry_value(name: str, student: str) -> sql.Composable:
    if name == "student_id":
        return sql.SQL(student)
    column = sql.SQL("entry.{}").format(sql.Identifier(name))
    return sql.SQL("{}::{}").format(column, sql.SQL(_CASTS[name])) if name in _CASTS else column


ACCESS_ENTRIES_INSERT_BATCH = sql.SQL(
    "INSERT INTO {table} ({columns}) SELECT {values} FROM {entries} "
    "LEFT JOIN {students} AS student ON student.institution_id = entry.institution_id "
    "AND student.id = entry.student_id {without_waiting}"
)
# Before the students app is loaded (a process without it): entries keep the student id given.
ACCESS_ENTRIES_INSERT_BATCH_UNLINKED = sql.SQL(
    "INSERT INTO {table} ({columns}) SELECT {unlinked_values} FROM {entries} {without_waiting}"
)
ACCESS_ENTRIES_BATCH_PARTS = {
    "table": sql.Identifier(AccessEntry._meta.db_table), "columns": _ENTRY_COLUMNS, "entries": _ENTRIES,
    "values": sql.SQL(", ").join(_entry_value(name, "student.id") for name in INSERTED_FIELDS),
    "unlinked_values": sql.SQL(", ").join(_entry_value(name, "entry.student_id") for name in INSERTED_FIELDS),
    "without_waiting": _WITHOUT_WAITING,
}

ACCESS_ENTRIES_EXPIRE = sql.SQL("SELECT audit_access_entries_expire(%(institution_id)s, %(before)s)")
ACCESS_ENTRIES_UNLINK_STUDENT = sql.SQL(
    "SELECT audit_access_entries_unlink_student(%(institution_id)s, %(student_id)s)"
)
ACCESS_ENTRIES_REMOVE_INSTITUTION = sql.SQL("SELECT audit_access_entries_remove_institution(%(institution_id)s)")
