import sys

from django.core.management.base import BaseCommand, CommandError

from demo.builder import DEMO_PASSWORD, DEMO_USERS, build_demo_institutions
from demo.history import DemoBuildError

OVERRIDDEN = "; promoted by its administrator over the gate's fairness check (docs/demo.md)"


class Command(BaseCommand):
    help = ("Create the demo institutions from the bundled UCI data, each with a live model and a replayed "
            "term of interventions (idempotent; --reset rebuilds them).")

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete and rebuild the demo institutions.")
        parser.add_argument("--search-iterations", type=int, default=4,
                            help="hyper-parameter candidates per training (fewer is faster)")

    def _progress(self, slug: str, fraction: float, stage: str) -> None:
        filled = int(30 * max(0.0, min(1.0, fraction)))
        sys.stdout.write(f"\r  {slug}: training [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {stage[:40]:<40}")
        sys.stdout.flush()

    def handle(self, *args, reset: bool = False, search_iterations: int = 4, **options):
        try:
            built = build_demo_institutions(reset=reset, search_iterations=search_iterations,
                                            progress=self._progress if sys.stdout.isatty() else None)
        except DemoBuildError as exc:
            raise CommandError(str(exc)) from exc
        if sys.stdout.isatty():
            sys.stdout.write("\r" + " " * 90 + "\r")
        for item in built:
            if not item.created:
                self.stdout.write(f"  institution {item.slug}: {item.students} students (already built; "
                                  f"--reset rebuilds it)")
                continue
            h = item.history
            self.stdout.write(
                f"  institution {item.slug}: {item.students} students; model v{h.model_number} {h.model_status} "
                f"(ROC-AUC {h.auc:.3f}, trained on {h.training_size} past outcomes, {h.seconds['train']:.0f} s"
                f"{OVERRIDDEN if h.gate_overridden else ''}); "
                f"last term: {h.finished_last_term} finished, {h.past_interventions} interventions; now: "
                f"{h.current} current students, {h.flagged_now} flagged, {h.current_interventions} open "
                f"interventions, {h.staff_flags} staff flags in all"
            )
            c = item.care
            self.stdout.write(
                f"  {item.slug}'s closed loop: {c.sections} sections, a progress survey answered by {c.answered} of "
                f"{c.instructors} instructors: {c.alerts} alerts ({c.acknowledged} acknowledged, {c.closed} closed), "
                f"{c.kudos} kudos"
            )
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD}):"))
        for spec in DEMO_USERS:
            roles = ", ".join(f"{role} at {slug}" for slug, role in spec.memberships)
            self.stdout.write(f"  {spec.username:18s} {roles}")
