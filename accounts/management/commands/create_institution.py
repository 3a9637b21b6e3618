from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.mail import emails_only_printed
from accounts.services import InvitationError, institution_start


class Command(BaseCommand):
    help = ("Create an institution and email its first administrator an invitation "
            "(docs/operations.md, 'Starting a new institution').")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The institution's address in URLs: /i/<slug>/ (letters, digits, -).")
        parser.add_argument("--name", required=True, help="The name people see, e.g. 'Northfield College'.")
        parser.add_argument("--admin-email", required=True, help="Who becomes its first administrator.")
        parser.add_argument("--timezone", default="UTC", help="e.g. Europe/Lisbon (default UTC).")
        parser.add_argument("--site-url", default=settings.SITE_URL,
                            help=f"Where people reach the platform, for the link (default: {settings.SITE_URL}).")

    def handle(self, *args, slug, name, admin_email, timezone, site_url, **options):
        try:
            institution, invitation, link = institution_start(
                slug=slug, name=name, admin_email=admin_email, timezone_name=timezone, base_url=site_url)
        except InvitationError as exc:
            raise CommandError(f"{exc.message} Nothing was created.") from None
        self.stdout.write(self.style.SUCCESS(f"Created {institution.name} (/i/{institution.slug}/)."))
        self.stdout.write(f"Invited {invitation.email} as its first administrator; the link works for "
                          f"{settings.INVITATION_VALID_DAYS} days, once.")
        if emails_only_printed():
            # No mail server configured: the operator hands the link over.
            self.stdout.write(f"No mail server is configured (EMAIL_HOST), so here is the link to hand over:\n{link}")
