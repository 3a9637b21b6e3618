"""Row-level security on every tenant table: a session scoped to one institution sees only its rows."""

from django.db import migrations

from institutions.migration_operations import TenantRowSecurity

TENANT_MODELS = [
    "institutions.Membership", "institutions.Job", "institutions.ApiKey", "institutions.WebhookEndpoint",
    "institutions.WebhookDelivery",
    "accounts.Invitation", "accounts.SecurityPolicy", "accounts.IdentityProvider", "accounts.SsoIdentity",
    "students.FeatureDefinition", "students.FeatureDefinitionChange", "students.Student", "students.StudentChange",
    "students.ImportMapping", "students.ImportUpload", "students.ActivityEvent",
    "predictions.ModelVersion", "predictions.PredictionSettings", "predictions.Prediction",
    "predictions.LatestPrediction",
    "interventions.InterventionType", "interventions.Intervention", "interventions.Flag",
    "interventions.RiskSnapshot",
]


class Migration(migrations.Migration):
    dependencies = [("dbguard", "0002_same_institution_links")]

    operations = [TenantRowSecurity(label) for label in TENANT_MODELS]
