"""Reactions to the lower app's events: an institution removed takes its access log with it."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from institutions.models import Institution

from .services import access_entries_remove_for_removed_institution


@receiver(post_delete, sender=Institution, dispatch_uid="audit_entries_of_removed_institution")
def remove_entries_of_removed_institution(sender, instance, **kwargs):
    # Inside the deletion's transaction, after the institution's row is gone (the foreign key is
    # checked at commit), so the database function can verify that it is.
    access_entries_remove_for_removed_institution(institution_id=instance.pk)
