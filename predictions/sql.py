"""The hand-written SQL of the predictions app: storing a scored chunk, re-ranking, the
number of instructor concerns this term written into the students' features, and the
prediction history's retention (what a setting expires, counting and removing it).

All are set-based statements the ORM cannot express at this speed (see the callers in
``predictions/services/``). Identifiers are composed with ``psycopg2.sql`` from the models'
tables; every value is a named parameter or COPY data. Each statement that touches a tenant
table binds ``%(institution_id)s`` (``tests/predictions/test_sql.py`` checks every statement of
this module), so the institution comes from the caller's scope, never from the rows.
"""

from __future__ import annotations

from psycopg2 import sql

from courses.models import AcademicSession, ConcernType, ProgressSurvey, SurveyInvitation, SurveyMark
from students.models import Student, StudentChange

from .models import LatestPrediction, Prediction, RiskFeedback


def _columns(*names: str) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


# A scored chunk is COPYed into this temporary table of the connection, then one statement moves it
# into the history and latest tables. Only what differs per student is staged: the institution,
# model version, job and time are the same for the whole chunk and bound as parameters.
STAGE_COLUMNS = ("student_id", "risk", "band", "base_value", "factors", "input_fingerprint")
_STAGE = sql.Identifier("prediction_stage")

STAGE_CREATE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS {stage} (student_id bigint, risk double precision, band text, "
    "base_value double precision, factors jsonb, input_fingerprint text) ON COMMIT DELETE ROWS"
).format(stage=_STAGE)

# A caller's outer transaction may still hold an earlier chunk (ON COMMIT has not emptied it yet).
STAGE_EMPTY = sql.SQL("TRUNCATE {stage}").format(stage=_STAGE)

STAGE_COPY = sql.SQL("COPY {stage} ({columns}) FROM STDIN WITH (FORMAT csv)").format(
    stage=_STAGE, columns=_columns(*STAGE_COLUMNS)
)

# The history rows are upserted from the stage and, from what that returns, the latest rows. Both
# upserts find their rows through their unique index (ON CONFLICT), so the cost does not depend on
# the planner's statistics: reading the chunk back from the history table, or deleting this run's
# earlier rows by student, was planned as a scan of everything the run had stored so far when the
# statistics predated the run, which made a 100,000-student rescore quadratic (0.7 s per chunk by
# the end). Re-storing a chunk of the same job replaces its rows (a redelivered task): every chunk
# of a run stores the run's time (%(created_at)s, the job's), which is also the history's partition
# key and part of its unique key.
STAGE_STORE = sql.SQL("""
    WITH stored AS (
        INSERT INTO {predictions} (institution_id, model_version_id, job_id, created_at, {staged})
        SELECT %(institution_id)s, %(model_version_id)s, %(job_id)s, %(created_at)s, {staged}
        FROM {stage}
        ON CONFLICT (institution_id, job_id, student_id, created_at) DO UPDATE SET
            model_version_id = EXCLUDED.model_version_id, risk = EXCLUDED.risk, band = EXCLUDED.band,
            base_value = EXCLUDED.base_value, factors = EXCLUDED.factors,
            input_fingerprint = EXCLUDED.input_fingerprint, created_at = EXCLUDED.created_at
        RETURNING id, student_id, model_version_id, risk, band, input_fingerprint, created_at
    )
    INSERT INTO {latest} (institution_id, student_id, prediction_id, model_version_id, risk, band,
                          input_fingerprint, rank, percentile, flagged, scored_at, updated_at)
    SELECT %(institution_id)s, student_id, id, model_version_id, risk, band, input_fingerprint, 0, 0, FALSE,
           created_at, %(updated_at)s
    FROM stored
    ON CONFLICT (institution_id, student_id) DO UPDATE SET
        prediction_id = EXCLUDED.prediction_id, model_version_id = EXCLUDED.model_version_id,
        risk = EXCLUDED.risk, band = EXCLUDED.band, input_fingerprint = EXCLUDED.input_fingerprint,
        scored_at = EXCLUDED.scored_at, updated_at = EXCLUDED.updated_at
""").format(
    predictions=sql.Identifier(Prediction._meta.db_table),
    latest=sql.Identifier(LatestPrediction._meta.db_table),
    staged=_columns(*STAGE_COLUMNS),
    stage=_STAGE,
)


def _rank(flag_condition: sql.SQL) -> sql.Composed:
    """Rank, percentile, band and flag of every latest row of one institution, in one statement.

    Rows whose standing did not change are not rewritten; a changed standing moves updated_at,
    so that an incremental pull (``predictions/?updated_since=``) sees a band or flag that moved.
    The order is the model's rank order (``-risk, student_id``). Every window is computed in that
    one order, the order of the ``latest_inst_risk`` index, so the statement needs at most one sort
    (and none when PostgreSQL reads the index) however small ``work_mem`` is: the percentile is
    ``PERCENT_RANK() OVER (ORDER BY risk)``, the share of students with a lower risk, counted from
    the top as ``total - at_or_above`` (the same float8 division, so the same values).
    """
    latest = sql.Identifier(LatestPrediction._meta.db_table)
    return sql.SQL("""
        UPDATE {latest} SET rank = r.position, percentile = r.pct, band = r.band, flagged = r.flagged,
                            updated_at = %(updated_at)s
        FROM (
            SELECT w.id, w.position, w.pct,
                   CASE WHEN w.risk >= %(band_high_from)s THEN 'high'
                        WHEN w.risk >= %(band_medium_from)s THEN 'medium' ELSE 'low' END AS band,
                   CASE WHEN {flag_condition} THEN TRUE ELSE FALSE END AS flagged
            FROM (
                SELECT id, risk, position,
                       CASE WHEN total > 1 THEN 100.0 * ((total - at_or_above)::float8 / (total - 1)::float8)
                            ELSE 0.0 END AS pct
                FROM (
                    SELECT id, risk,
                           ROW_NUMBER() OVER (ORDER BY risk DESC, student_id) AS position,
                           COUNT(*) OVER (ORDER BY risk DESC) AS at_or_above,
                           COUNT(*) OVER () AS total
                    FROM {latest} WHERE institution_id = %(institution_id)s
                ) AS counted
            ) AS w
        ) AS r
        WHERE {latest}.id = r.id AND {latest}.institution_id = %(institution_id)s
          AND ({latest}.rank <> r.position OR {latest}.percentile <> r.pct OR {latest}.band <> r.band
               OR {latest}.flagged <> r.flagged)
    """).format(latest=latest, flag_condition=flag_condition)


# The two flag rules: the top ``flag_capacity`` students, or everyone at or above ``flag_threshold``.
LATEST_RANK_BY_CAPACITY = _rank(sql.SQL("w.position <= %(flag_capacity)s"))
LATEST_RANK_BY_THRESHOLD = _rank(sql.SQL("w.risk >= %(flag_threshold)s"))


def _concern_counts_refresh(*, only_given_students: bool) -> sql.Composed:
    """Write ``features[%(key)s]``, the number of concern marks (``ConcernType.kind`` concern, not
    kudos) in surveys of a term that contains ``%(today)s``, into every current student of one
    institution (or only ``%(student_ids)s``) whose stored value differs, and record each change
    as a ``StudentChange`` of ``%(source)s``: one statement however many students, and no write
    (no change row, no new ``updated_at``) for a student whose value is already right.

    The old value is read in the same snapshot as the update (``counted``), so the change row says
    what was replaced. The statement's row count is the number of students changed.
    """
    students_filter = sql.SQL("AND s.id = ANY(%(student_ids)s::bigint[])" if only_given_students else "")
    marks_filter = sql.SQL("AND m.student_id = ANY(%(student_ids)s::bigint[])" if only_given_students else "")
    return sql.SQL("""
        WITH concerns AS (
            SELECT m.student_id, COUNT(*) AS concerns
            FROM {mark} m
            JOIN {concern_type} t ON t.id = m.concern_type_id AND t.institution_id = %(institution_id)s
            JOIN {invitation} i ON i.id = m.invitation_id AND i.institution_id = %(institution_id)s
            JOIN {survey} p ON p.id = i.survey_id AND p.institution_id = %(institution_id)s
            JOIN {term} a ON a.id = p.term_id AND a.institution_id = %(institution_id)s
            WHERE m.institution_id = %(institution_id)s AND t.kind = %(concern_kind)s
              AND a.start_date <= %(today)s AND a.end_date >= %(today)s {marks_filter}
            GROUP BY m.student_id
        ), counted AS (
            SELECT s.id AS student_id, s.features -> %(key)s AS old_value,
                   to_jsonb(COALESCE(c.concerns, 0)) AS new_value
            FROM {student} s LEFT JOIN concerns c ON c.student_id = s.id
            WHERE s.institution_id = %(institution_id)s AND s.outcome = %(enrolled)s AND s.status <> %(inactive)s
              {students_filter}
        ), changed AS (
            UPDATE {student} SET features = {student}.features || jsonb_build_object(%(key)s, counted.new_value),
                                 updated_at = %(now)s
            FROM counted
            WHERE {student}.id = counted.student_id AND {student}.institution_id = %(institution_id)s
              AND counted.old_value IS DISTINCT FROM counted.new_value
            RETURNING {student}.id, counted.old_value, counted.new_value
        )
        INSERT INTO {change} (institution_id, student_id, source, job_id, actor_id, created, changes, changed_at)
        SELECT %(institution_id)s, id, %(source)s, NULL, NULL, FALSE,
               jsonb_build_object(%(change_key)s, jsonb_build_array(old_value, new_value)), %(now)s
        FROM changed
    """).format(
        mark=sql.Identifier(SurveyMark._meta.db_table),
        concern_type=sql.Identifier(ConcernType._meta.db_table),
        invitation=sql.Identifier(SurveyInvitation._meta.db_table),
        survey=sql.Identifier(ProgressSurvey._meta.db_table),
        term=sql.Identifier(AcademicSession._meta.db_table),
        student=sql.Identifier(Student._meta.db_table),
        change=sql.Identifier(StudentChange._meta.db_table),
        students_filter=students_filter,
        marks_filter=marks_filter,
    )


# Every current student (the nightly refresh, switching the feature on) or only the students an
# instructor just marked (after a survey is saved).
CONCERN_COUNTS_REFRESH_ALL = _concern_counts_refresh(only_given_students=False)
CONCERN_COUNTS_REFRESH_STUDENTS = _concern_counts_refresh(only_given_students=True)


# --- The prediction history's retention (services.history_retention) -------------------------
#
# Per student: a row is kept while it is younger than %(keep_all_since)s; an older one is kept
# while it is the student's last row of its calendar month (in %(timezone)s; months counted as
# year * 12 + month - 1) and that month is %(monthly_since)s or later (no bound when
# %(monthly_forever)s). With full rescores that is the month's last run; with incremental ones
# (only changed students scored) it is each student's standing at the month's end. Never
# removed: a student's latest prediction (LatestPrediction) and a prediction an advisor gave
# feedback on. Only rows in [%(from)s, %(until)s) are read, a span of whole local months, so
# the clean-up can work one month at a time and the preview over all months at once.


def _history_removable(columns: sql.Composable, tail: sql.Composable) -> sql.Composed:
    """The expired rows that nothing else reads, as ``columns`` of ``h``."""
    local_month = sql.SQL(
        "(EXTRACT(YEAR FROM p.created_at AT TIME ZONE %(timezone)s)::int * 12 "
        "+ EXTRACT(MONTH FROM p.created_at AT TIME ZONE %(timezone)s)::int - 1)")
    return sql.SQL("""
        SELECT {columns} FROM (
            SELECT p.id, p.created_at, p.job_id, {local_month} AS local_month,
                   ROW_NUMBER() OVER (PARTITION BY p.student_id, {local_month}
                                      ORDER BY p.created_at DESC, p.id DESC) AS from_last
            FROM {predictions} AS p
            WHERE p.institution_id = %(institution_id)s AND p.created_at >= %(from)s AND p.created_at < %(until)s
        ) AS h
        WHERE h.created_at < %(keep_all_since)s
          AND NOT (h.from_last = 1 AND (%(monthly_forever)s OR h.local_month >= %(monthly_since)s::int))
          AND NOT EXISTS (SELECT 1 FROM {latest} AS l
                          WHERE l.institution_id = %(institution_id)s AND l.prediction_id = h.id)
          AND NOT EXISTS (SELECT 1 FROM {feedback} AS f
                          WHERE f.institution_id = %(institution_id)s AND f.prediction_id = h.id)
        {tail}
    """).format(columns=columns, tail=tail, local_month=local_month,
                predictions=sql.Identifier(Prediction._meta.db_table),
                latest=sql.Identifier(LatestPrediction._meta.db_table),
                feedback=sql.Identifier(RiskFeedback._meta.db_table))


# What the clean-up would remove: rows, and runs that lose at least one row.
HISTORY_REMOVABLE_COUNT = _history_removable(sql.SQL("COUNT(*), COUNT(DISTINCT h.job_id)"), sql.SQL(""))

# One bounded batch of the removal (its own transaction); returns the job of each removed row.
HISTORY_REMOVE_BATCH = sql.SQL("""
    DELETE FROM {predictions} AS d
    USING ({removable}) AS batch
    WHERE d.institution_id = %(institution_id)s AND d.id = batch.id AND d.created_at = batch.created_at
    RETURNING d.job_id
""").format(
    predictions=sql.Identifier(Prediction._meta.db_table),
    removable=_history_removable(sql.SQL("h.id, h.created_at"), sql.SQL("LIMIT %(batch_size)s")),
)

# The oldest row the setting could expire (the clean-up starts its months there).
HISTORY_OLDEST_BEFORE = sql.SQL("""
    SELECT MIN(created_at) FROM {predictions}
    WHERE institution_id = %(institution_id)s AND created_at < %(keep_all_since)s
""").format(predictions=sql.Identifier(Prediction._meta.db_table))


# --- The history's monthly partitions (migration 0013; services.history_partitions) ----------
#
# Creating and dropping partitions is the owner's work: the application calls the two functions
# the migration created, which run as the owner and touch nothing but the history's partitions.
PARTITION_ENSURE = sql.SQL("SELECT app_prediction_partition_ensure(%(month)s::date)")
PARTITIONS_DROP_EMPTY = sql.SQL("SELECT app_prediction_partitions_drop_empty(%(before)s::date)")
PARTITIONS_LIST = sql.SQL("""
    SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
    WHERE i.inhparent = %(table)s::regclass ORDER BY c.relname
""")
