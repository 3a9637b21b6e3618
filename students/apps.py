from django.apps import AppConfig


class StudentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "students"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from audit.batching import link_entries_to_students
        from institutions.models import Institution
        from institutions.signals import job_stopped_outside_its_task, membership_removed

        from .receivers import reopen_upload_of_stopped_import, unassign_students_of_removed_member
        from .stages import give_new_institution_default_stages

        post_save.connect(give_new_institution_default_stages, sender=Institution, dispatch_uid="students-stages")

        membership_removed.connect(unassign_students_of_removed_member, dispatch_uid="students-unassign-removed")
        job_stopped_outside_its_task.connect(reopen_upload_of_stopped_import, dispatch_uid="students-reopen-upload")
        # An access log entry written after its student was erased does not name the student.
        link_entries_to_students(self.get_model("Student")._meta.db_table)
