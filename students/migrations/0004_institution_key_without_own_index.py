# The institution key's own index is redundant (a full index led by institution covers it).

from django.db import migrations

from institutions.migration_operations import DropInstitutionKeyIndex


class Migration(migrations.Migration):

    dependencies = [
        ('institutions', '0004_institution_key_without_own_index'),
        ('students', '0003_activity_events'),
    ]

    operations = [
        DropInstitutionKeyIndex('activityevent'),
        DropInstitutionKeyIndex('featuredefinition'),
        DropInstitutionKeyIndex('importmapping'),
        DropInstitutionKeyIndex('importupload'),
        DropInstitutionKeyIndex('student'),
        DropInstitutionKeyIndex('studentchange'),
    ]
