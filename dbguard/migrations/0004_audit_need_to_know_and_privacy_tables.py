"""The guard on the tables and links added since 0003: the access audit trail, need-to-know grants,
the import preview's job, retention policies and erasure records."""

from django.db import migrations

from institutions.migration_operations import SameInstitutionLink, TenantRowSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("dbguard", "0003_row_level_security"),
        ("audit", "0001_initial"),
        ("interventions", "0005_need_to_know_grants_and_flag_routing"),
        ("students", "0008_import_preview_in_the_worker"),
        ("privacy", "0001_retention_and_erasure"),
    ]

    operations = [
        TenantRowSecurity("audit.AccessEntry"),
        TenantRowSecurity("interventions.StudentAccessGrant"),
        SameInstitutionLink("interventions.StudentAccessGrant", "student"),
        SameInstitutionLink("students.ImportUpload", "preview_job"),
        TenantRowSecurity("privacy.RetentionPolicy"),
        TenantRowSecurity("privacy.ErasureRecord"),
        SameInstitutionLink("privacy.ErasureRecord", "job"),
    ]
