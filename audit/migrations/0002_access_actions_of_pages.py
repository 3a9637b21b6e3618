from django.db import migrations, models


# Django empties a test database between transactional tests with TRUNCATE: only a connection
# opened with ``-c dropout.audit_test_flush=on`` (dropout_platform/settings_test.py) may.
TRUNCATE_ONLY_FOR_TEST_FLUSH = """
CREATE OR REPLACE FUNCTION audit_accessentry_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('dropout.audit_test_flush', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'access log entries are append-only: TRUNCATE of audit_accessentry refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TRUNCATE_NEVER = """
CREATE OR REPLACE FUNCTION audit_accessentry_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access log entries are append-only: TRUNCATE of audit_accessentry refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='accessentry',
            name='action',
            field=models.CharField(choices=[('profile_view', 'Viewed the student profile'), ('what_if', 'Ran a what-if on the student'), ('student_search', 'Listed or searched students'), ('flagged_list', 'Viewed the flagged list'), ('caseload', 'Viewed a caseload'), ('worklist_export', 'Exported a student list (CSV)'), ('intervention_list', 'Listed interventions'), ('intervention_view', 'Opened an intervention'), ('import_preview', "Viewed an import's preview rows"), ('import_report', 'Viewed an import report'), ('import_errors_csv', "Exported an import's problems (CSV)"), ('import_changes_csv', "Exported an import's changes (CSV)"), ('import_job_result', "Read an import job's report (API)"), ('api_student_read', 'Read a student (API)'), ('api_student_list', 'Listed students (API)'), ('api_prediction_read', "Read a student's risk (API)"), ('api_prediction_history', "Read a student's risk history (API)"), ('api_prediction_list', 'Listed risks (API)'), ('api_intervention_read', 'Read an intervention (API)'), ('api_intervention_list', 'Listed interventions (API)'), ('api_flag_read', 'Read a flag (API)'), ('api_flag_list', 'Listed flags (API)'), ('access_log_search', 'Searched the access log'), ('access_log_export', 'Exported the access log (CSV)'), ('student_erased', 'Erased a student (entries unlinked)')], max_length=32),
        ),
        migrations.RunSQL(sql=TRUNCATE_ONLY_FOR_TEST_FLUSH, reverse_sql=TRUNCATE_NEVER),
    ]
