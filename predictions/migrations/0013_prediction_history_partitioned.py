"""The prediction history becomes a table partitioned by month of ``created_at`` (the run's time).

PostgreSQL declarative partitioning (RANGE, one partition per calendar month in UTC, plus a
default partition that catches a row no monthly partition holds yet, e.g. a backdated one). The
existing rows move in one ``INSERT ... SELECT`` (docs/operations.md, "Prediction history:
partitions", says what a large deployment should expect) and the new table takes the old one's
name, sequence, indexes, constraints, row-level security and same-institution keys. What
partitioning forces:

- unique keys hold the partition key: the primary key is ``(id, created_at)`` (ids still come
  from one sequence) and ``prediction_unique_per_run`` is ``(institution, job, student,
  created_at)``, with ``created_at`` one value per run (the job's time, services.chunk_store);
- no ``UNIQUE (institution_id, id)`` for a composite key to point at, so the advisors' feedback
  (``RiskFeedback.prediction``) is checked by SameInstitutionLink's triggers instead, as the
  latest prediction's link already was.

Partitions are created and dropped by two functions that run as the owner (the application's
role owns no table): ``app_prediction_partition_ensure(month)`` creates a month's partition with
its row-level security (moving that month's rows out of the default partition if any landed
there), and ``app_prediction_partitions_drop_empty(before)`` drops monthly partitions that end
before ``before`` and hold no row of any institution. The beat job
``predictions.tasks.apply_history_retention`` calls them.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.migrations.operations.base import Operation

from institutions.migration_operations import RLS_POLICY, SameInstitutionLink, row_security_rule

TABLE = "predictions_prediction"
OLD = "predictions_prediction_unpartitioned"
SEQUENCE = "predictions_prediction_id_seq"
DEFAULT_PARTITION = "predictions_prediction_default"
MONTHS_AHEAD = 2


def _ensure_function() -> str:
    return f"""
CREATE FUNCTION app_prediction_partition_ensure(month date) RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT SET TimeZone TO 'UTC' AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'predictions_prediction_y' || to_char(month, 'YYYY') || 'm' || to_char(month, 'MM');
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE created_at >= lower_bound AND created_at < upper_bound) THEN
        -- The month's rows that landed in the default partition move into their own.
        ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT_PARTITION};
        EXECUTE format('CREATE TABLE %I PARTITION OF {TABLE} FOR VALUES FROM (%L) TO (%L)',
                       name, lower_bound, upper_bound);
        PERFORM app_prediction_partition_guard(name);
        EXECUTE format('INSERT INTO %I SELECT * FROM {DEFAULT_PARTITION} WHERE created_at >= $1 AND created_at < $2',
                       name) USING lower_bound, upper_bound;
        DELETE FROM {DEFAULT_PARTITION} WHERE created_at >= lower_bound AND created_at < upper_bound;
        ALTER TABLE {TABLE} ATTACH PARTITION {DEFAULT_PARTITION} DEFAULT;
    ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF {TABLE} FOR VALUES FROM (%L) TO (%L)',
                       name, lower_bound, upper_bound);
        PERFORM app_prediction_partition_guard(name);
    END IF;
    RETURN true;
END $$"""


def _guard_function() -> str:
    """Row-level security is per table: a partition read directly is guarded like its parent.
    Set before any row arrives (a table with pending key checks cannot be altered)."""
    rule = row_security_rule()
    return f"""
CREATE FUNCTION app_prediction_partition_guard(name text) RETURNS void LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
    EXECUTE format('CREATE POLICY {RLS_POLICY} ON %I USING {rule} WITH CHECK {rule}', name);
END $$"""


DROP_EMPTY_FUNCTION = f"""
CREATE FUNCTION app_prediction_partitions_drop_empty(before date) RETURNS text[] LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT SET TimeZone TO 'UTC' SET lock_timeout TO '5s' AS $$
DECLARE
    part record;
    has_rows boolean;
    dropped text[] := ARRAY[]::text[];
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = '{TABLE}'::regclass AND c.relname ~ '^predictions_prediction_y[0-9]{{4}}m[0-9]{{2}}$'
          AND to_date(substr(c.relname, 25, 4) || substr(c.relname, 30, 2), 'YYYYMM') + interval '1 month'
              <= date_trunc('month', before::timestamp)
        ORDER BY c.relname
    LOOP
        -- As the owner, whom row-level security does not bind: "empty" means no institution's row.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', part.relname) INTO has_rows;
        CONTINUE WHEN has_rows;
        BEGIN
            -- Dropping a partition locks its parent briefly: at most 5 s of waiting (lock_timeout above).
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped || part.relname::text;
        EXCEPTION WHEN lock_not_available OR object_in_use THEN
            NULL;  -- busy (or rows written in this very transaction): the next day's run tries again
        END;
    END LOOP;
    RETURN dropped;
END $$"""


class PartitionPredictionHistory(Operation):
    reduces_to_sql = False
    reversible = False

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        def run(statement):
            schema_editor.execute(statement, None)

        def fetch(statement):
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall()

        role = schema_editor.quote_name(settings.DATABASE_APP_ROLE)
        foreign_keys = fetch(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE conrelid = '{TABLE}'::regclass AND contype = 'f' ORDER BY conname")
        # The old table steps aside with its index-backed names (index names are per schema).
        run(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        run(f"ALTER TABLE {OLD} RENAME CONSTRAINT predictions_prediction_pkey TO {OLD}_pkey")
        run(f"ALTER TABLE {OLD} RENAME CONSTRAINT prediction_unique_per_run TO {OLD}_unique_per_run")
        run(f"ALTER INDEX prediction_inst_student RENAME TO {OLD}_inst_student")
        run(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)")
        run(f"CREATE SEQUENCE {TABLE}_history_id_seq AS bigint OWNED BY {TABLE}.id")
        run(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_history_id_seq')")
        run(f"SELECT setval('{TABLE}_history_id_seq', COALESCE((SELECT max(id) FROM {OLD}), 0) + 1, false)")
        run(_guard_function())
        run("REVOKE ALL ON FUNCTION app_prediction_partition_guard(text) FROM PUBLIC")
        run(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
        run(f"SELECT app_prediction_partition_guard('{DEFAULT_PARTITION}')")
        rule = row_security_rule()
        run(_ensure_function())
        run(DROP_EMPTY_FUNCTION)
        for function in ("app_prediction_partition_ensure(date)", "app_prediction_partitions_drop_empty(date)"):
            run(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
            run(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")
        # A partition for every month the history spans, and the coming ones.
        run(f"""SELECT app_prediction_partition_ensure(month::date) FROM generate_series(
                    date_trunc('month', COALESCE((SELECT min(created_at) FROM {OLD}), now()) AT TIME ZONE 'UTC'),
                    date_trunc('month', now() AT TIME ZONE 'UTC') + interval '{MONTHS_AHEAD} months',
                    interval '1 month') AS month""")
        # Rows first, then keys and indexes: building each once is cheaper than checking per row.
        run(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")
        run(f"ALTER TABLE {TABLE} ADD CONSTRAINT predictions_prediction_pkey PRIMARY KEY (id, created_at)")
        run(f"ALTER TABLE {TABLE} ADD CONSTRAINT prediction_unique_per_run "
            "UNIQUE (institution_id, job_id, student_id, created_at)")
        run(f"CREATE INDEX prediction_inst_student ON {TABLE} (institution_id, student_id, created_at DESC)")
        for name, definition in foreign_keys:
            run(f"ALTER TABLE {TABLE} ADD CONSTRAINT {schema_editor.quote_name(name)} {definition}")
        run(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        run(f"CREATE POLICY {RLS_POLICY} ON {TABLE} USING {rule} WITH CHECK {rule}")
        run(f"DROP TABLE {OLD}")
        run(f"ALTER SEQUENCE {TABLE}_history_id_seq RENAME TO {SEQUENCE}")
        run(f"ANALYZE {TABLE}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        raise NotImplementedError("the partitioned history is not converted back")

    def describe(self):
        return "Partition the prediction history by month (PostgreSQL declarative partitioning)"


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("predictions", "0012_realised_performance"),
        ("dbguard", "0007_risk_feedback"),
        ("institutions", "0011_job_kind_history_cleanup"),
    ]

    operations = [
        # The feedback's key to a prediction goes (it pointed at UNIQUE (institution_id, id), which a
        # table partitioned by created_at cannot have); triggers check the institution instead.
        migrations.RunSQL(
            "ALTER TABLE predictions_riskfeedback DROP CONSTRAINT predictions_riskfeedback_prediction_id_same_institution",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="riskfeedback",
            name="prediction",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=models.deletion.CASCADE,
                                    related_name="+", to="predictions.prediction"),
        ),
        migrations.RunSQL(
            f"ALTER TABLE {TABLE} DROP CONSTRAINT predictions_prediction_institution_id_key",
            reverse_sql=migrations.RunSQL.noop,
        ),
        SameInstitutionLink("predictions.RiskFeedback", "prediction", trigger=True),
        migrations.SeparateDatabaseAndState(
            database_operations=[PartitionPredictionHistory()],
            state_operations=[
                migrations.RemoveConstraint(model_name="prediction", name="prediction_unique_per_run"),
                migrations.AddConstraint(
                    model_name="prediction",
                    constraint=models.UniqueConstraint(fields=("institution", "job", "student", "created_at"),
                                                       name="prediction_unique_per_run"),
                ),
            ],
        ),
    ]
