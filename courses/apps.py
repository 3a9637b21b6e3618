from django.apps import AppConfig


class CoursesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courses"
    verbose_name = "Courses, sections and instructors"

    def ready(self) -> None:
        from institutions.signals import institution_created

        from . import tasks  # noqa: F401 - registers the roster import job runner
        from .new_institution import give_new_institution_default_concern_types

        institution_created.connect(give_new_institution_default_concern_types,
                                    dispatch_uid="courses-default-concern-types")
