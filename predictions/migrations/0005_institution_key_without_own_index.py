# The institution key's own index is redundant (a full index led by institution covers it).

from django.db import migrations

from institutions.migration_operations import DropInstitutionKeyIndex


class Migration(migrations.Migration):

    dependencies = [
        ('institutions', '0004_institution_key_without_own_index'),
        ('predictions', '0004_latest_prediction_fk_unenforced'),
    ]

    operations = [
        DropInstitutionKeyIndex('latestprediction'),
        DropInstitutionKeyIndex('modelversion'),
        DropInstitutionKeyIndex('prediction'),
        DropInstitutionKeyIndex('predictionsettings'),
    ]
