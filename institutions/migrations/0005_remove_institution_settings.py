# Institution.settings was never read or written: per-institution options live in their own
# tables (for example predictions' PredictionSettings), each with its own validation.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("institutions", "0004_institution_key_without_own_index"),
    ]

    operations = [
        migrations.RemoveField(model_name="institution", name="settings"),
    ]
