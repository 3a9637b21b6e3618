"""How students reacts to events of the institutions app."""

from .importing.uploads import import_upload_reopen_after_stopped_job
from .services import students_unassign_advisor


def unassign_students_of_removed_member(sender, *, institution, user_id, actor=None, **kwargs) -> None:
    students_unassign_advisor(institution=institution, user_id=user_id, actor=actor)


def reopen_upload_of_stopped_import(sender, *, institution, job, **kwargs) -> None:
    import_upload_reopen_after_stopped_job(institution=institution, job=job)
