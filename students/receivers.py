"""How students reacts to events of the institutions app."""

from .services import students_unassign_advisor


def unassign_students_of_removed_member(sender, *, institution, user_id, actor=None, **kwargs) -> None:
    students_unassign_advisor(institution=institution, user_id=user_id, actor=actor)
