"""Signals other apps may react to; institutions never imports the apps above it."""

from django.dispatch import Signal

# Sent after a membership is deleted; kwargs: institution, user_id, actor.
membership_removed = Signal()

# Sent by institutions.services.institution_create after a new institution is saved; kwargs: institution.
# The apps above give it what it starts with (interventions: the default intervention types).
institution_created = Signal()
