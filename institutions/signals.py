"""Signals other apps may react to; institutions never imports the apps above it."""

from django.dispatch import Signal

# Sent after a membership is deleted; kwargs: institution, user_id, actor.
membership_removed = Signal()
