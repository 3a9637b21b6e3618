"""The database-level tenancy guard on the courses tables (docs/tenancy.md, "Database-level guard"):
row-level security on every table, and every link between them (and to students) a composite key
that includes the institution."""

from django.db import migrations

from institutions.migration_operations import SameInstitutionLink, TenantRowSecurity

TABLES = ["AcademicSession", "Course", "Section", "SectionTerm", "Instructor", "TeachingAssignment", "Enrolment",
          "RosterImport"]
LINKS = [("Section", "course"), ("SectionTerm", "section"), ("SectionTerm", "term"),
         ("TeachingAssignment", "section"), ("TeachingAssignment", "instructor"),
         ("Enrolment", "section"), ("Enrolment", "student")]


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_courses_sections_instructors_enrolments"),
        # The application role and the policies' function, and the policies' current form.
        ("dbguard", "0006_policies_evaluated_once_per_statement"),
    ]

    operations = [
        *(TenantRowSecurity(name) for name in TABLES),
        *(SameInstitutionLink(model, field) for model, field in LINKS),
    ]
