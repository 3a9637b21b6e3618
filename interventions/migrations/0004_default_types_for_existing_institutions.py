# Default intervention types are now created with the institution, no longer when a page first
# opens; institutions that never opened such a page get them here, once.

from django.db import migrations

# A copy, not an import: a migration must keep doing what it did when it was written.
DEFAULT_INTERVENTION_TYPES = (
    ("meeting", "Meeting"),
    ("call", "Phone call"),
    ("email", "Email"),
    ("referral_tutoring", "Referral to tutoring"),
    ("referral_financial_aid", "Referral to financial aid"),
    ("referral_counselling", "Referral to counselling"),
    ("other", "Other"),
)


def create_default_types(apps, schema_editor):
    Institution = apps.get_model("institutions", "Institution")
    InterventionType = apps.get_model("interventions", "InterventionType")
    have_types = InterventionType._base_manager.values("institution_id")
    InterventionType._base_manager.bulk_create(
        [
            InterventionType(institution_id=institution_id, key=key, label=label, position=position)
            for institution_id in Institution._base_manager.exclude(pk__in=have_types).values_list("pk", flat=True)
            for position, (key, label) in enumerate(DEFAULT_INTERVENTION_TYPES)
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("interventions", "0003_institution_key_without_own_index"),
    ]

    operations = [
        migrations.RunPython(create_default_types, migrations.RunPython.noop),
    ]
