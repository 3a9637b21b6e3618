"""The access log's table, made append-only by PostgreSQL itself.

A trigger refuses every UPDATE, DELETE and TRUNCATE of ``audit_accessentry``. Three functions are
the only ways past it, each allowed exactly one kind of change through a transaction-local
setting (``dropout.audit_maintenance``) that they set and clear themselves:

- ``audit_access_entries_expire(institution, before)`` deletes one institution's entries older
  than ``before``, and refuses a ``before`` later than 30 days ago (retention never removes a
  recent entry);
- ``audit_access_entries_unlink_student(institution, student)`` sets ``student_id`` to NULL on
  that student's entries and changes nothing else (erasure);
- ``audit_access_entries_remove_institution(institution)`` deletes the entries of an institution
  that no longer exists (it is called after the institution's row is deleted).

Under the trigger the row must stay what it was, except for the one change allowed.
"""

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.db import migrations, models


APPEND_ONLY = """
CREATE FUNCTION audit_accessentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    maintenance text := coalesce(current_setting('dropout.audit_maintenance', true), '');
BEGIN
    IF TG_OP = 'DELETE' AND maintenance = 'retention' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'DELETE' AND maintenance = 'institution_removed'
            AND NOT EXISTS (SELECT 1 FROM institutions_institution WHERE id = OLD.institution_id) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND maintenance = 'unlink_student' AND NEW.student_id IS NULL
            AND to_jsonb(NEW) - 'student_id' = to_jsonb(OLD) - 'student_id' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'access log entries are append-only: % of audit_accessentry refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only retention (audit.services.access_entries_expire) and erasure '
                     '(audit.services.redact_student) change the access log.';
END;
$$;

CREATE TRIGGER audit_accessentry_append_only
    BEFORE UPDATE OR DELETE ON audit_accessentry
    FOR EACH ROW EXECUTE FUNCTION audit_accessentry_append_only();

CREATE FUNCTION audit_accessentry_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access log entries are append-only: TRUNCATE of audit_accessentry refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_accessentry_no_truncate
    BEFORE TRUNCATE ON audit_accessentry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_accessentry_no_truncate();

CREATE FUNCTION audit_access_entries_expire(p_institution_id bigint, p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    removed bigint;
BEGIN
    IF p_before IS NULL OR p_before > now() - interval '30 days' THEN
        RAISE EXCEPTION 'access log retention keeps at least 30 days (asked to remove entries before %)', p_before
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('dropout.audit_maintenance', 'retention', true);
    DELETE FROM audit_accessentry WHERE institution_id = p_institution_id AND created_at < p_before;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('dropout.audit_maintenance', '', true);
    RETURN removed;
END;
$$;

CREATE FUNCTION audit_access_entries_unlink_student(p_institution_id bigint, p_student_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    unlinked bigint;
BEGIN
    PERFORM set_config('dropout.audit_maintenance', 'unlink_student', true);
    UPDATE audit_accessentry SET student_id = NULL
        WHERE institution_id = p_institution_id AND student_id = p_student_id;
    GET DIAGNOSTICS unlinked = ROW_COUNT;
    PERFORM set_config('dropout.audit_maintenance', '', true);
    RETURN unlinked;
END;
$$;

CREATE FUNCTION audit_access_entries_remove_institution(p_institution_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    removed bigint;
BEGIN
    PERFORM set_config('dropout.audit_maintenance', 'institution_removed', true);
    DELETE FROM audit_accessentry WHERE institution_id = p_institution_id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('dropout.audit_maintenance', '', true);
    RETURN removed;
END;
$$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_accessentry FROM PUBLIC;
"""

APPEND_ONLY_REVERSE = """
DROP FUNCTION audit_access_entries_remove_institution(bigint);
DROP FUNCTION audit_access_entries_unlink_student(bigint, bigint);
DROP FUNCTION audit_access_entries_expire(bigint, timestamptz);
DROP TRIGGER audit_accessentry_no_truncate ON audit_accessentry;
DROP FUNCTION audit_accessentry_no_truncate();
DROP TRIGGER audit_accessentry_append_only ON audit_accessentry;
DROP FUNCTION audit_accessentry_append_only();
"""


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('institutions', '0006_job_leases_cancel_and_follow_ups'),
    ]

    operations = [
        migrations.CreateModel(
            name='AccessEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('action', models.CharField(choices=[('profile_view', 'Viewed the student profile'), ('what_if', 'Ran a what-if on the student'), ('student_search', 'Listed or searched students'), ('flagged_list', 'Viewed the flagged list'), ('caseload', 'Viewed a caseload'), ('worklist_export', 'Exported a student list (CSV)'), ('import_report', 'Viewed an import report'), ('import_errors_csv', "Exported an import's problems (CSV)"), ('import_changes_csv', "Exported an import's changes (CSV)"), ('import_job_result', "Read an import job's report (API)"), ('api_student_read', 'Read a student (API)'), ('api_student_list', 'Listed students (API)'), ('api_prediction_read', "Read a student's risk (API)"), ('api_prediction_history', "Read a student's risk history (API)"), ('api_prediction_list', 'Listed risks (API)'), ('api_intervention_read', 'Read an intervention (API)'), ('api_intervention_list', 'Listed interventions (API)'), ('api_flag_read', 'Read a flag (API)'), ('api_flag_list', 'Listed flags (API)'), ('access_log_export', 'Exported the access log (CSV)'), ('student_erased', 'Erased a student (entries unlinked)')], max_length=32)),
                ('actor_user_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_name', models.CharField(max_length=200)),
                ('api_key_id', models.BigIntegerField(blank=True, null=True)),
                ('student_id', models.BigIntegerField(blank=True, null=True)),
                ('object_id', models.BigIntegerField(blank=True, null=True)),
                ('filters', models.JSONField(blank=True, default=dict)),
                ('result_count', models.PositiveIntegerField(blank=True, null=True)),
                ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                ('institution', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='institutions.institution')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
                'abstract': False,
                'base_manager_name': 'all_institutions',
                'indexes': [models.Index(fields=['institution', '-created_at'], name='accessentry_inst_created'), models.Index(fields=['institution', 'student_id', '-created_at'], name='accessentry_inst_student'), models.Index(fields=['institution', 'actor_user_id', '-created_at'], name='accessentry_inst_actor')],
            },
            managers=[
                ('objects', django.db.models.manager.Manager()),
                ('all_institutions', django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunSQL(sql=APPEND_ONLY, reverse_sql=APPEND_ONLY_REVERSE),
    ]
