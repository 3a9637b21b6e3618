"""Add newly marked strings to locale/<language>/LC_MESSAGES/django.po (the makemessages of this
project, without xgettext) and drop the ones no longer marked; docs/translating.md."""

from django.core.management.base import BaseCommand

from institutions.translations import catalogue_update, target_languages


class Command(BaseCommand):
    help = "Update the translation catalogues from the marked strings of the templates and Python."

    def add_arguments(self, parser):
        parser.add_argument("--language", action="append", help="Only this language (repeatable).")

    def handle(self, *args, **options):
        for language in options["language"] or target_languages():
            added, removed = catalogue_update(language)
            self.stdout.write(f"{language}: {added} added (to translate), {removed} removed")
