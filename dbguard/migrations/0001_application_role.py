from django.db import migrations

from institutions.migration_operations import ApplicationRole


class Migration(migrations.Migration):
    dependencies = [
        ("institutions", "0006_job_leases_cancel_and_follow_ups"),
        ("accounts", "0003_identity_providers"),
        ("students", "0007_feature_schema_management"),
        ("predictions", "0006_gate_override_and_fairness_group_size"),
        ("interventions", "0004_default_types_for_existing_institutions"),
    ]

    operations = [ApplicationRole()]
