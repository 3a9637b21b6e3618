"""The hand-written SQL of the students app: the file import's set-based reads and writes.

The import compares and writes up to 100,000 students per file; these statements do in one
round trip per chunk what the ORM would do row by row (see the callers in
``students/importing/``).

The convention every ``<app>/sql.py`` follows (``tests/test_sql_modules.py`` checks all of them):

- Each statement is a module-level UPPER_CASE name bound to a ``psycopg2.sql`` composable
  (``sql.SQL`` or ``sql.Composed``), built when the module is imported, with table and column
  names taken from the models through ``sql.Identifier`` and ``sql.SQL(...).format``: no SQL in
  a ``str``, no f-string, no ``noqa: S608``. A statement with variants is one constant per
  variant, built by a private helper (``_name``); the module defines no public function, so the
  test finds every statement in ``vars(module)``.
- Values are named parameters (``%(name)s``) or COPY data, never text in the statement.
- A statement that names a tenant table (a model with an ``institution`` foreign key) binds
  ``%(institution_id)s``, to filter by it or to write it: the institution comes from the
  caller's scope, never from the data. So no ``COPY`` goes straight into a tenant table: rows are
  COPYed into a temporary stage table and moved from there by a statement that binds the
  institution. The one exception is table maintenance (``ANALYZE``, or ``app_table_analyze()``
  which runs it as the owner), which returns no rows and changes none.
- Only these modules hand SQL to ``cursor.execute`` or ``copy_expert``; the callers pass the
  constants.
"""

from __future__ import annotations

from psycopg2 import sql

from institutions.models import Job

from .models import Student, StudentChange

# The student fields an import writes, in the order of the stages' COPY data.
STUDENT_FIELDS = ("name", "email", "program", "cohort", "status", "outcome", "outcome_date", "advisor_id")
_WRITTEN = (*STUDENT_FIELDS, "features")

_STUDENTS = sql.Identifier(Student._meta.db_table)
_CHANGES = sql.Identifier(StudentChange._meta.db_table)
_NEW_STAGE = sql.Identifier("import_student_stage")
_CHANGED_STAGE = sql.Identifier("import_student_update")


def _columns(*names: str) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


# The stored students among a chunk's ids (the array in %(external_ids)s), in the order of
# ``upsert._STORED``. The features come back as jsonb's text: the ORM's per-row JSON decoding was
# the bottleneck of a no-op re-import, and equal text needs no decoding at all.
STUDENTS_STORED = sql.SQL(
    "SELECT id, external_id, {fields}, features::text FROM {students} "
    "WHERE institution_id = %(institution_id)s AND external_id = ANY(%(external_ids)s)"
).format(fields=_columns(*STUDENT_FIELDS), students=_STUDENTS)

# New students are COPYed into this temporary table of the import's transaction, then moved into
# the students table with their "created" change rows by one statement.
NEW_STAGE_CREATE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS {stage} (external_id text, name text, email text, program text, cohort text, "
    "status text, outcome text, outcome_date date, advisor_id bigint, features jsonb) ON COMMIT DROP"
).format(stage=_NEW_STAGE)
NEW_STAGE_EMPTY = sql.SQL("TRUNCATE {stage}").format(stage=_NEW_STAGE)
NEW_STAGE_COPY = sql.SQL("COPY {stage} (external_id, {written}) FROM STDIN").format(
    stage=_NEW_STAGE, written=_columns(*_WRITTEN))
NEW_STAGE_MOVE = sql.SQL("""
    WITH new AS (
        INSERT INTO {students} (institution_id, external_id, {written}, created_at, updated_at)
        SELECT %(institution_id)s, external_id, {written}, %(now)s, %(now)s FROM {stage}
        RETURNING id, external_id
    )
    INSERT INTO {changes} (institution_id, student_id, source, job_id, actor_id, created, changes, changed_at)
    SELECT %(institution_id)s, id, %(source)s, %(job_id)s, %(actor_id)s, TRUE,
           jsonb_build_object('external_id', jsonb_build_array(NULL, external_id)), %(now)s
    FROM new
""").format(students=_STUDENTS, changes=_CHANGES, stage=_NEW_STAGE, written=_columns(*_WRITTEN))

# Changed students: their new values and the change row's ``{"field": [old, new]}`` are COPYed
# into this temporary table, then one statement updates the students of the institution and
# writes a change row for each student it updated.
CHANGED_STAGE_CREATE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS {stage} (id bigint, name text, email text, program text, cohort text, "
    "status text, outcome text, outcome_date date, advisor_id bigint, features jsonb, changes jsonb) ON COMMIT DROP"
).format(stage=_CHANGED_STAGE)
CHANGED_STAGE_EMPTY = sql.SQL("TRUNCATE {stage}").format(stage=_CHANGED_STAGE)
CHANGED_STAGE_COPY = sql.SQL("COPY {stage} (id, {written}, changes) FROM STDIN").format(
    stage=_CHANGED_STAGE, written=_columns(*_WRITTEN))
CHANGED_STAGE_MOVE = sql.SQL("""
    WITH updated AS (
        UPDATE {students} AS s SET {assignments}, updated_at = %(now)s
        FROM {stage} AS u
        WHERE s.id = u.id AND s.institution_id = %(institution_id)s
        RETURNING s.id, u.changes
    )
    INSERT INTO {changes} (institution_id, student_id, source, job_id, actor_id, created, changes, changed_at)
    SELECT %(institution_id)s, id, %(source)s, %(job_id)s, %(actor_id)s, FALSE, changes, %(now)s
    FROM updated
""").format(
    students=_STUDENTS, changes=_CHANGES, stage=_CHANGED_STAGE,
    assignments=sql.SQL(", ").join(
        sql.SQL("{column} = u.{column}").format(column=sql.Identifier(name)) for name in _WRITTEN),
)

# One import at a time per institution: a transaction-scoped advisory lock in the lock space
# %(lock_space)s, keyed by the institution (%(lock_key)s: its id folded into PostgreSQL's int).
IMPORT_LOCK = sql.SQL("SELECT pg_advisory_xact_lock(%(lock_space)s, %(lock_key)s)")

# A first load checks the new students' foreign keys as each chunk goes in, not all at the commit.
CONSTRAINTS_IMMEDIATE = sql.SQL("SET CONSTRAINTS ALL IMMEDIATE")

# The planner's estimate of the institution's number of students: whether its statistics know of
# a load (see ``service._statistics_stale``).
# Asked of app_planned_rows(), which plans it as the owner: the application's own plan would carry
# the row-level security condition, whose selectivity the planner can only guess.
STUDENTS_PLANNED = sql.SQL("SELECT app_planned_rows({students}, %(institution_id)s)").format(
    students=sql.Literal(Student._meta.db_table))

# Statistics of the columns queries select, join or sort students by. Not the features (statistics
# of whole jsonb documents do not help plan queries on single features, and computing them was a
# good part of the ANALYZE's time), nor the free text and dates no query filters on (name and
# email are only searched by substring, which statistics barely inform): a third less time.
_UNANALYZED = frozenset({"features", "name", "email", "outcome_date", "created_at"})
# Only an owner may ANALYZE a table, and the application acts as a role that owns none
# (docs/tenancy.md, "Database-level guard"): app_table_analyze() runs it as the owner.
STUDENTS_ANALYZE = sql.SQL("SELECT app_table_analyze({students}, {columns})").format(
    students=sql.Literal(Student._meta.db_table),
    columns=sql.Literal([field.column for field in Student._meta.concrete_fields if field.name not in _UNANALYZED]),
)

# An import's progress, written through a second connection so that pollers see it while the
# import's own transaction is still open. It renews the attempt's lease and returns whether a
# cancel was asked for (institutions.jobs: the progress call is where a job stops).
JOB_PROGRESS = sql.SQL(
    "UPDATE {jobs} SET progress_done = %(done)s, progress_total = %(total)s, stage = %(stage)s, "
    "updated_at = %(now)s, lease_expires_at = %(lease)s WHERE id = %(job_id)s "
    "AND institution_id = %(institution_id)s AND status = 'running' AND attempts = %(attempt)s "
    "RETURNING cancel_requested_at IS NOT NULL"
).format(jobs=sql.Identifier(Job._meta.db_table))

# The API's hottest reads, used only by ``students/orm_bypass.py`` (see there for why): a student
# by id, the number of an institution's students, and a page of them in id order. The page's ids
# come from the (institution_id, id) index first, then only those rows are read ("deferred
# join"), the same rows in the same order as the ORM's ``order_by("id")[offset:offset + limit]``.
# Each binds the institution from the request's scope.
_API_COLUMNS = sql.SQL(", ").join(
    sql.SQL("{table}.{column}").format(table=_STUDENTS, column=sql.Identifier(name))
    for name in ("id", "external_id", *STUDENT_FIELDS, "features", "created_at", "updated_at")
)
API_STUDENT_BY_ID = sql.SQL(
    "SELECT {columns} FROM {students} WHERE {students}.institution_id = %(institution_id)s AND {students}.id = %(id)s"
).format(columns=_API_COLUMNS, students=_STUDENTS)
API_STUDENT_COUNT = sql.SQL("SELECT count(*) FROM {students} WHERE institution_id = %(institution_id)s").format(
    students=_STUDENTS
)
API_STUDENT_PAGE = sql.SQL(
    "SELECT {columns} FROM {students} JOIN ("
    "SELECT id FROM {students} WHERE institution_id = %(institution_id)s ORDER BY id LIMIT %(limit)s OFFSET %(offset)s"
    ") AS page USING (id) WHERE {students}.institution_id = %(institution_id)s ORDER BY {students}.id"
).format(columns=_API_COLUMNS, students=_STUDENTS)
