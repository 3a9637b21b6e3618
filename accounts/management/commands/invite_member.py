from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.mail import emails_only_printed
from accounts.services import InvitationError, invitation_create
from institutions.models import Institution, Role


class Command(BaseCommand):
    help = ("Email an invitation to an existing institution, e.g. a new first administrator when the "
            "first link expired (docs/operations.md, 'Starting a new institution').")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", default=Role.ADMIN, choices=Role.values)
        parser.add_argument("--site-url", default=settings.SITE_URL)

    def handle(self, *args, slug, email, role, site_url, **options):
        institution = Institution.objects.filter(slug=slug).first()
        if institution is None:
            raise CommandError(f"There is no institution {slug!r}. Nothing was sent.")
        try:
            invitation, link = invitation_create(institution=institution, email=email, role=role,
                                                 invited_by=None, base_url=site_url)
        except InvitationError as exc:
            raise CommandError(f"{exc.message} Nothing was sent.") from None
        self.stdout.write(self.style.SUCCESS(
            f"Invited {invitation.email} to {institution.name} as {invitation.get_role_display()}."))
        if emails_only_printed():
            self.stdout.write(f"No mail server is configured (EMAIL_HOST), so here is the link to hand over:\n{link}")
