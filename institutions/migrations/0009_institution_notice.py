from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('institutions', '0008_job_kinds_of_retention'),
    ]

    operations = [
        migrations.AddField(
            model_name='institution',
            name='notice',
            field=models.CharField(
                blank=True, max_length=300,
                help_text="Shown at the top of every page of the institution, e.g. that its data is a demo's.",
            ),
        ),
    ]
