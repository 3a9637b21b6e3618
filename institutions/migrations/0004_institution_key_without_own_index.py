# The institution key's own index is redundant (a full index led by institution covers it).

from django.db import migrations

from institutions.migration_operations import DropInstitutionKeyIndex


class Migration(migrations.Migration):

    dependencies = [
        ('institutions', '0003_activity_events'),
    ]

    operations = [
        DropInstitutionKeyIndex('apikey'),
        DropInstitutionKeyIndex('job'),
        DropInstitutionKeyIndex('membership'),
        DropInstitutionKeyIndex('webhookdelivery'),
        DropInstitutionKeyIndex('webhookendpoint'),
    ]
