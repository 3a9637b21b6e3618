"""The guard on a fanned-out rescore's chunks: row-level security, and their job and model version
in the same institution."""

from django.db import migrations

from institutions.migration_operations import SameInstitutionLink, TenantRowSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("dbguard", "0007_risk_feedback"),
        ("predictions", "0014_rescore_chunks"),
    ]

    operations = [
        TenantRowSecurity("predictions.RescoreChunk"),
        SameInstitutionLink("predictions.RescoreChunk", "job"),
        SameInstitutionLink("predictions.RescoreChunk", "model_version"),
    ]
