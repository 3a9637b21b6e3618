"""``flush`` (empty every table) as the owner of the tables: the application role may not TRUNCATE.

Tests that commit (``transactional_db``) end with it; see ``migrate.py`` beside it.
"""

from __future__ import annotations

from django.core.management.commands import flush

from institutions.db_roles import owner_connection


class Command(flush.Command):
    def handle(self, **options):
        with owner_connection(options["database"]):
            return super().handle(**options)
