from django.db import migrations

from institutions.migration_operations import CURRENT_INSTITUTION_FUNCTION, RLS_POLICY, row_security_rule

PER_ROW_RULE = f"({CURRENT_INSTITUTION_FUNCTION}() IS NULL OR institution_id = {CURRENT_INSTITUTION_FUNCTION}())"


def _alter_every_policy(rule: str) -> str:
    return f"""
DO $$
DECLARE target record;
BEGIN
    FOR target IN SELECT tablename FROM pg_policies
                  WHERE schemaname = current_schema() AND policyname = '{RLS_POLICY}'
    LOOP
        EXECUTE format('ALTER POLICY {RLS_POLICY} ON %I USING {rule} WITH CHECK {rule}', target.tablename);
    END LOOP;
END $$;
"""


class Migration(migrations.Migration):
    """Every tenant table's policy keeps its rule, with the current institution read once per
    statement instead of once per row (the same rows pass; docs/benchmarks.md has the cost)."""

    dependencies = [("dbguard", "0005_planner_estimate_as_owner")]

    operations = [
        migrations.RunSQL(sql=_alter_every_policy(row_security_rule()), reverse_sql=_alter_every_policy(PER_ROW_RULE)),
    ]
