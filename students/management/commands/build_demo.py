from django.core.management.base import BaseCommand

from students.demo import DEMO_PASSWORD, DEMO_USERS, build_demo_institutions


class Command(BaseCommand):
    help = "Create the demo institutions from the bundled UCI data (idempotent; --reset rebuilds them)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete and rebuild the demo institutions.")

    def handle(self, *args, reset: bool = False, **options):
        counts = build_demo_institutions(reset=reset)
        for slug, count in counts.items():
            self.stdout.write(f"  institution {slug}: {count} students")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD}):"))
        for spec in DEMO_USERS:
            roles = ", ".join(f"{role} at {slug}" for slug, role in spec.memberships)
            self.stdout.write(f"  {spec.username:18s} {roles}")
