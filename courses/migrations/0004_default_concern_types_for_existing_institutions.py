# New institutions get the default concern types when they are created (courses.new_institution);
# the institutions that existed before get them here, once.

from django.db import migrations

# A copy, not an import: a migration must keep doing what it did when it was written.
DEFAULT_CONCERN_TYPES = (
    ("attendance", "Attendance", "concern"),
    ("low_grades", "Low grades", "concern"),
    ("missing_work", "Missing work", "concern"),
    ("participation", "Participation", "concern"),
    ("kudos", "Kudos: doing well", "kudos"),
)


def create_default_concern_types(apps, schema_editor):
    Institution = apps.get_model("institutions", "Institution")
    ConcernType = apps.get_model("courses", "ConcernType")
    have_types = ConcernType._base_manager.values("institution_id")
    ConcernType._base_manager.bulk_create(
        [
            ConcernType(institution_id=institution_id, key=key, label=label, kind=kind, position=position)
            for institution_id in Institution._base_manager.exclude(pk__in=have_types).values_list("pk", flat=True)
            for position, (key, label, kind) in enumerate(DEFAULT_CONCERN_TYPES)
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("courses", "0003_progress_surveys"),
    ]

    operations = [
        migrations.RunPython(create_default_concern_types, migrations.RunPython.noop),
    ]
