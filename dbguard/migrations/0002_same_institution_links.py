"""Every link between two tenant tables stays inside one institution, checked by PostgreSQL."""

from django.db import migrations

from institutions.migration_operations import SameInstitutionLink


class Migration(migrations.Migration):
    dependencies = [("dbguard", "0001_application_role")]

    operations = [
        SameInstitutionLink("institutions.Job", "waits_for"),
        SameInstitutionLink("institutions.WebhookDelivery", "endpoint"),
        SameInstitutionLink("accounts.SsoIdentity", "provider"),
        SameInstitutionLink("students.FeatureDefinitionChange", "feature"),
        SameInstitutionLink("students.ImportUpload", "validation_job"),
        SameInstitutionLink("students.ImportUpload", "commit_job"),
        SameInstitutionLink("students.ActivityEvent", "student"),
        # The audit trail's keys are not enforced (bulk writes): a set-based trigger instead.
        SameInstitutionLink("students.StudentChange", "student", trigger=True),
        SameInstitutionLink("students.StudentChange", "job", trigger=True),
        SameInstitutionLink("predictions.ModelVersion", "job"),
        SameInstitutionLink("predictions.Prediction", "student"),
        SameInstitutionLink("predictions.Prediction", "model_version"),
        SameInstitutionLink("predictions.Prediction", "job"),
        SameInstitutionLink("predictions.LatestPrediction", "student"),
        SameInstitutionLink("predictions.LatestPrediction", "model_version"),
        SameInstitutionLink("predictions.LatestPrediction", "prediction", trigger=True),
        SameInstitutionLink("interventions.Intervention", "student"),
        SameInstitutionLink("interventions.Intervention", "intervention_type"),
        SameInstitutionLink("interventions.Flag", "student"),
        SameInstitutionLink("interventions.RiskSnapshot", "job"),
    ]
