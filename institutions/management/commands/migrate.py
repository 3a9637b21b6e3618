"""``migrate`` as the owner of the tables (docs/operations.md, "Database roles").

Every other connection acts as the application role, which may not create or alter tables; this
command opens its connections as the owner: ``DATABASE_OWNER_URL``'s login where it is set,
otherwise the login of ``DATABASE_URL`` (the superuser of the embedded server and of CI) without
switching roles. The creation of a test database calls it too.
"""

from __future__ import annotations

from django.core.management.commands import migrate

from institutions.db_roles import owner_connection


class Command(migrate.Command):
    def handle(self, *args, **options):
        with owner_connection(options["database"]):
            return super().handle(*args, **options)
