from django.apps import AppConfig


class StudentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "students"

    def ready(self) -> None:
        from audit.batching import link_entries_to_students
        from institutions.signals import job_stopped_outside_its_task, membership_removed

        from .receivers import reopen_upload_of_stopped_import, unassign_students_of_removed_member

        membership_removed.connect(unassign_students_of_removed_member, dispatch_uid="students-unassign-removed")
        job_stopped_outside_its_task.connect(reopen_upload_of_stopped_import, dispatch_uid="students-reopen-upload")
        # An access log entry written after its student was erased does not name the student.
        link_entries_to_students(self.get_model("Student")._meta.db_table)
