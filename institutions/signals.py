"""Signals other apps may react to; institutions never imports the apps above it."""

from django.dispatch import Signal

# Sent after a membership is deleted; kwargs: institution, user_id, actor.
membership_removed = Signal()

# Sent by institutions.services.institution_create after a new institution is saved; kwargs: institution.
# The apps above give it what it starts with (interventions: the default intervention types).
institution_created = Signal()

# Sent when a job ends without its task saying so: cancelled before it started, or given up by the
# sweeper or after a lost database; kwargs: institution, job. The app that owns the job's kind
# tidies up what the task would have (students: the import's upload is open again).
job_stopped_outside_its_task = Signal()
