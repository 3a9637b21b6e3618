# Default stages are now created with the institution, no longer when a page first reads them;
# institutions that never had them read get them here, once.

from django.db import migrations

# A copy, not an import: a migration must keep doing what it did when it was written.
DEFAULT_STAGES = (
    ("application", "Application"),
    ("enrolment", "Enrolment"),
    ("end_of_term_1", "End of term 1"),
    ("end_of_term_2", "End of term 2"),
)


def create_default_stages(apps, schema_editor):
    Institution = apps.get_model("institutions", "Institution")
    FeatureStage = apps.get_model("students", "FeatureStage")
    have_stages = FeatureStage._base_manager.values("institution_id")
    FeatureStage._base_manager.bulk_create(
        [
            FeatureStage(institution_id=institution_id, key=key, label=label, position=position)
            for institution_id in Institution._base_manager.exclude(pk__in=have_stages).values_list("pk", flat=True)
            for position, (key, label) in enumerate(DEFAULT_STAGES)
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("students", "0013_failed_and_withdrawn_outcomes"),
    ]

    operations = [
        migrations.RunPython(create_default_stages, migrations.RunPython.noop),
    ]
