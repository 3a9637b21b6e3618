from django.apps import AppConfig


class StudentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "students"

    def ready(self) -> None:
        from institutions.signals import membership_removed

        from .receivers import unassign_students_of_removed_member

        membership_removed.connect(unassign_students_of_removed_member, dispatch_uid="students-unassign-removed")
