"""The planner's estimate of an institution's rows in a table, as the owner sees it.

The import asks it whether the statistics know of a load (``students.importing.service``). Under
row-level security the application's own EXPLAIN carries the policy's condition, whose
selectivity the planner can only guess, so the estimate no longer tells; the owner is not bound.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION app_planned_rows(target regclass, institution bigint) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE plan json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s WHERE institution_id = %s', target, institution) INTO plan;
    RETURN plan;
END $$;
REVOKE ALL ON FUNCTION app_planned_rows(regclass, bigint) FROM PUBLIC;
"""


def grant(apps, schema_editor):
    from django.conf import settings

    schema_editor.execute(
        f"GRANT EXECUTE ON FUNCTION app_planned_rows(regclass, bigint) TO {schema_editor.quote_name(settings.DATABASE_APP_ROLE)}"
    )


class Migration(migrations.Migration):
    dependencies = [("dbguard", "0004_audit_need_to_know_and_privacy_tables")]

    operations = [
        migrations.RunSQL(FORWARD, "DROP FUNCTION app_planned_rows(regclass, bigint)"),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
