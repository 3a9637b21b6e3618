"""The guard on advisors' risk feedback: row-level security, and its student, prediction and model
version in the same institution."""

from django.db import migrations

from institutions.migration_operations import SameInstitutionLink, TenantRowSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("dbguard", "0006_policies_evaluated_once_per_statement"),
        ("predictions", "0008_risk_feedback"),
    ]

    operations = [
        TenantRowSecurity("predictions.RiskFeedback"),
        SameInstitutionLink("predictions.RiskFeedback", "student"),
        SameInstitutionLink("predictions.RiskFeedback", "prediction"),
        SameInstitutionLink("predictions.RiskFeedback", "model_version"),
    ]
