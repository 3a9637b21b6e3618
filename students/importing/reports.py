"""The validation report as a downloadable CSV (formula cells neutralised like every export)."""

from __future__ import annotations

from institutions.csv_export import formula_safe_writer

from .service import ImportReport

ERROR_CSV_HEADER = ["row", "column", "value", "reason"]


def write_error_csv(stream, report: ImportReport) -> None:
    writer = formula_safe_writer(stream)
    writer.writerow(ERROR_CSV_HEADER)
    for error in report.errors:
        writer.writerow([error.row, error.column, error.value, error.reason])
    if report.errors_truncated:
        writer.writerow(["", "", "", f"... {report.error_count - len(report.errors)} more problems not listed"])
