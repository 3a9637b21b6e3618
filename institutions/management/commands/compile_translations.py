"""Compile locale/*/LC_MESSAGES/*.po to .mo in pure Python (polib): no GNU gettext needed.
Run by ``make install`` (and so by ``make run`` and ``make test``); docs/translating.md."""

from django.core.management.base import BaseCommand

from institutions.translations import catalogues_compile


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po to .mo) without GNU gettext."

    def handle(self, *args, **options):
        written = catalogues_compile()
        self.stdout.write(f"compiled {len(written)} catalogue(s)" if written else "catalogues up to date")
