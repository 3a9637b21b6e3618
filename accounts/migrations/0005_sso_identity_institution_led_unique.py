from django.db import migrations, models


class Migration(migrations.Migration):
    """The (provider, subject) uniqueness of an SSO link becomes (institution, provider, subject):
    the same rows are unique (a provider belongs to one institution), and the tenant table gains the
    institution-led index every tenant table has."""

    dependencies = [("accounts", "0004_recovery_codes")]

    operations = [
        migrations.RemoveConstraint(model_name="ssoidentity", name="sso_identity_unique_subject"),
        migrations.AddConstraint(
            model_name="ssoidentity",
            constraint=models.UniqueConstraint(fields=["institution", "provider", "subject"],
                                               name="sso_identity_unique_subject"),
        ),
    ]
