"""``manage.py import_students <institution-slug> <file> [--mapping mapping.json]``: the page's import, from a shell.

Takes files up to ``IMPORT_MAX_BULK_FILE_BYTES`` (the page: ``IMPORT_MAX_FILE_BYTES``); the upload
records the channel, so its job checks the same limit.

Uses the same service and the same job as the upload page: the file is validated as a whole,
then committed; the report (counts, and every problem with row, column, value and reason) is
printed, and with ``--errors-csv`` written as CSV. Exit status 1 when nothing was imported.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from institutions.models import Institution
from institutions.observability import job_log_context
from institutions.scoping import institution_scope
from students.importing import ImportFileError, import_preview, mapping_from_dict
from students.importing.mapping import ImportMappingSpec
from students.importing.reports import write_error_csv
from students.importing.service import import_mapping_remember
from students.importing.uploads import (
    import_job_run,
    import_upload_create_from_path,
    import_upload_set_mapping,
    import_upload_start,
)
from students.models import ImportChannel


class Command(BaseCommand):
    help = ("Import students from a CSV or XLSX file into one institution (validate everything, then upsert). "
            "Takes files up to IMPORT_MAX_BULK_FILE_BYTES (default 2 GB), beyond the upload page's "
            "IMPORT_MAX_FILE_BYTES (default 50 MB); the file is streamed, so memory stays flat whatever its size "
            "(an XLSX is also held to the IMPORT_XLSX_* limits).")

    def add_arguments(self, parser):
        parser.add_argument("institution", help="the institution's slug, as in /i/<slug>/")
        limit = max(settings.IMPORT_MAX_BULK_FILE_BYTES, settings.IMPORT_MAX_FILE_BYTES)
        parser.add_argument("file", type=Path,
                            help=f"the CSV or XLSX file, up to {limit / 1_048_576:,.0f} MB "
                                 "(IMPORT_MAX_BULK_FILE_BYTES)")
        parser.add_argument("--mapping", type=Path,
                            help="mapping JSON (see docs/imports.md); default: the remembered/suggested mapping")
        parser.add_argument("--delimiter", help="CSV delimiter; detected when omitted")
        parser.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
        parser.add_argument("--valid-rows-only", action="store_true",
                            help="import the valid rows even if others have errors (never the default)")
        parser.add_argument("--errors-csv", type=Path, help="write the error report to this CSV file")
        parser.add_argument("--show-mapping", action="store_true", help="print the mapping that will be used")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        try:
            institution = Institution.objects.get(slug=options["institution"])
        except Institution.DoesNotExist:
            raise CommandError(f"No institution with slug {options['institution']!r}.") from None
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        with institution_scope(institution):
            return self._import(institution, path, options)

    def _mapping(self, institution, path: Path, options) -> ImportMappingSpec:
        if options["mapping"]:
            try:
                data = json.loads(options["mapping"].read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the mapping {options['mapping']}: {exc}") from None
            spec = mapping_from_dict(data)
        else:
            spec = import_preview(institution=institution, path=path, original_name=path.name,
                                  delimiter=options["delimiter"], channel=ImportChannel.CLI).mapping
        if options["delimiter"]:
            spec.delimiter = options["delimiter"]
        return spec

    def _import(self, institution, path: Path, options) -> None:
        try:
            spec = self._mapping(institution, path, options)
        except ImportFileError as exc:
            raise CommandError(f"{exc.message} [{exc.code}]") from None
        if options["show_mapping"]:
            self.stdout.write(json.dumps(spec.as_dict(), indent=2, ensure_ascii=False))
        upload = import_upload_create_from_path(institution=institution, path=path)
        import_upload_set_mapping(upload=upload, spec=spec)
        import_mapping_remember(institution=institution, spec=spec)
        job = import_upload_start(upload=upload, commit=not options["dry_run"],
                                  valid_rows_only=options["valid_rows_only"], triggered_by="cli", dispatch=False)
        bar = None if options["no_progress"] else tqdm(total=0, unit="row", desc="validating", leave=False)

        def progress(stage: str, done: int, total: int) -> None:
            if bar is None:
                return
            bar.set_description(stage)
            bar.total = total
            bar.n = min(done, total) if total else done
            bar.refresh()

        try:
            with job_log_context(job.pk):
                report = import_job_run(institution=institution, job=job, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        job.refresh_from_db()
        self.stdout.write(f"Import job #{job.pk}: {job.status}")
        if report is None:
            raise CommandError(f"{job.error} [{job.result.get('file_error', {}).get('code', 'error')}]")
        self._print_report(report, options)
        if report.has_errors and not report.committed:
            raise CommandError("Nothing was imported.")

    def _print_report(self, report, options) -> None:
        self.stdout.write(f"{report.rows} rows ({report.format}"
                          f"{', ' + report.encoding if report.encoding else ''}"
                          f"{', delimiter ' + repr(report.delimiter) if report.delimiter else ''}) "
                          f"in {report.seconds:.1f} s")
        if report.new_features:
            self.stdout.write(f"New features: {', '.join(report.new_features)}")
        for error in report.errors[:50]:
            self.stdout.write(f"  row {error.row}, column {error.column!r}, value {error.value!r}: {error.reason}")
        if report.error_count > 50:
            self.stdout.write(f"  ... and {report.error_count - 50} more (use --errors-csv to get them all)")
        if options["errors_csv"] and report.errors:
            with options["errors_csv"].open("w", encoding="utf-8", newline="") as handle:
                write_error_csv(handle, report)
            self.stdout.write(f"Error report written to {options['errors_csv']}")
        style = self.style.ERROR if report.has_errors and not report.committed else self.style.SUCCESS
        self.stdout.write(style(report.summary))
