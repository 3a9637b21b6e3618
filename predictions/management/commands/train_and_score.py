"""Train a model and score current students for one or more institutions, in this process.

For operators and the demo (``make demo`` runs it for the demo institutions): no worker needed.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from institutions.jobs import job_create
from institutions.models import Institution, JobKind
from institutions.observability import job_log_context
from institutions.scoping import institution_scope
from predictions.models import ModelStatus, ModelTrigger
from predictions.selectors import model_version_list
from predictions.services.jobs import rescore_job_run, retrain_job_run


class Command(BaseCommand):
    help = "Train (unless a version exists and --retrain is not given) and score institutions in-process."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="+", help="institution slugs")
        parser.add_argument("--retrain", action="store_true", help="train a new version even if one exists")
        parser.add_argument("--full", action="store_true", help="rescore every current student")
        parser.add_argument("--search-iterations", type=int, default=None,
                            help="hyper-parameter candidates to try (fewer is faster)")

    def handle(self, *args, slugs, retrain, full, search_iterations, **options):
        for slug in slugs:
            institution = Institution.objects.filter(slug=slug).first()
            if institution is None:
                raise CommandError(f"no institution with slug {slug!r}")
            with institution_scope(institution):
                self._run(institution, retrain=retrain, full=full, search_iterations=search_iterations)

    def _progress(self, label: str):
        def report(fraction: float, stage: str) -> None:
            filled = int(30 * max(0.0, min(1.0, fraction)))
            sys.stdout.write(f"\r  {label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {stage[:40]:<40}")
            sys.stdout.flush()
        return report

    def _run(self, institution: Institution, *, retrain: bool, full: bool, search_iterations: int | None) -> None:
        self.stdout.write(f"{institution.name} ({institution.slug})")
        if retrain or not model_version_list(institution=institution).exists():
            params = {"search_iterations": search_iterations} if search_iterations else {}
            job, _ = job_create(institution=institution, kind=JobKind.RETRAIN, params=params, triggered_by="command")
            started = time.monotonic()
            with job_log_context(job.pk):
                version = retrain_job_run(institution=institution, job=job, trigger=ModelTrigger.DEMO,
                                          on_progress=self._progress("training"))
            self.stdout.write("")
            if version is None:
                raise CommandError(f"{institution.slug}: {job.error}")
            self.stdout.write(f"  model v{version.number}: {version.status}, ROC-AUC "
                              f"{f'{version.auc:.3f}' if version.auc is not None else 'n/a'} "
                              f"({time.monotonic() - started:.1f} s)")
            if version.status != ModelStatus.LIVE:
                self.stdout.write("  the new version did not pass the promotion gate; an admin decides")
        job, _ = job_create(institution=institution, kind=JobKind.RESCORE, params={"full": full},
                            triggered_by="command", join_active=True)
        started = time.monotonic()
        with job_log_context(job.pk):
            outcome = rescore_job_run(institution=institution, job=job)
        if outcome is None:
            raise CommandError(f"{institution.slug}: {job.error}")
        self.stdout.write(f"  {outcome.current} current students: {outcome.scored} scored now, "
                          f"{outcome.unchanged} unchanged since their last score; {outcome.flagged} flagged "
                          f"({time.monotonic() - started:.1f} s)"
                          + (f"; {outcome.message}" if outcome.message else ""))
