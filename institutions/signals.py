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

# Sent by the jobs API after it has represented jobs for a successful GET (one job or a page);
# kwargs: request, institution, jobs (the representations, as sent), detail (one job by id). An
# import job's result holds the file's cell values: the audit app records that they were read.
job_results_read = Signal()
