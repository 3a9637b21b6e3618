import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("institutions", "0006_job_leases_cancel_and_follow_ups"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="institution",
            name="need_to_know_access",
            field=models.BooleanField(
                default=False,
                help_text="Advisors see only their caseload, students granted to them, and flags routed to them.",
            ),
        ),
        migrations.AddField(
            model_name="institution",
            name="need_to_know_changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="institution",
            name="need_to_know_changed_by",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                related_name="+", to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
