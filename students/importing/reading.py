"""Open an uploaded CSV or XLSX file and stream its rows, refusing what is not a table.

CSV: UTF-8 with or without BOM, else Windows-1252; the delimiter is sniffed among , ; tab |
unless one is given; quoted fields and CRLF/LF line ends are handled by :mod:`csv`.
XLSX: the first sheet, read with openpyxl in read-only mode (rows are streamed, not loaded).
Header names are stripped of surrounding whitespace (the UCI export ends one with a tab).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImportFileError

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
_SNIFF_BYTES = 64 * 1024
_MAGIC = {
    b"\x1f\x8b": "a gzip archive",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an xz archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) or other OLE document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "an SQLite database",
}


@dataclass
class TableInfo:
    format: str  # "csv" or "xlsx"
    encoding: str = ""
    delimiter: str = ""
    header: list[str] = field(default_factory=list)

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise ImportFileError(
            "file_too_large",
            f"The file is {size / 1_048_576:.1f} MB; the largest accepted file is {limit / 1_048_576:.0f} MB. "
            "Split it into several files or ask the operator to raise IMPORT_MAX_FILE_BYTES.",
        )


def _detect_binary(head: bytes, name: str) -> str | None:
    """'xlsx' for a real workbook; raise for any other binary content; None for text."""
    if head.startswith(b"PK\x03\x04"):
        if name.lower().endswith((".xlsx", ".xlsm")):
            return "xlsx"
        kind = "a ZIP archive"
        try:
            with zipfile.ZipFile(io.BytesIO(head)) as archive:  # best effort: the head may be truncated
                if any(item.startswith("xl/") for item in archive.namelist()):
                    kind = "an Excel workbook"
        except zipfile.BadZipFile:
            pass
        if kind == "an Excel workbook":
            return "xlsx"
        raise ImportFileError(
            "binary_file", f"This is {kind}, not a CSV file. Unpack it and upload the CSV or XLSX inside."
        )
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise ImportFileError(
                "binary_file", f"This is {kind}, not a CSV or XLSX file, even if it is named {name!r}."
            )
    if b"\x00" in head:
        raise ImportFileError(
            "binary_file",
            "The file contains NUL bytes: it is a binary file (or UTF-16 text), not a CSV. "
            "Save it as CSV (UTF-8) or XLSX and upload again.",
        )
    return None


def _detect_encoding(path: Path) -> str:
    """UTF-8 (BOM or not) if the whole file decodes as such, else Windows-1252; else refuse."""
    with path.open("rb") as handle:
        start = handle.read(3)
    encodings = ("utf-8-sig", "cp1252") if start == codecs.BOM_UTF8 else ("utf-8", "cp1252")
    offset = 0
    for encoding in encodings:
        decoder = codecs.getincrementaldecoder(encoding)()
        consumed = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    pending = consumed - len(decoder.getstate()[0])
                    decoder.decode(chunk)
                    consumed += len(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError as exc:
            offset = max(0, pending) + exc.start  # the last encoding tried decides the message
    with path.open("rb") as handle:
        before = handle.read(offset + 1)
    line = before[:offset].count(b"\n") + 1
    raise ImportFileError(
        "undecodable",
        f"The file is neither UTF-8 nor Windows-1252 text: byte 0x{before[offset:offset + 1].hex()} on line {line} "
        f"(byte offset {offset}) cannot be decoded. Save it as CSV UTF-8 and upload again.",
    )


def _sniff_delimiter(sample: str) -> str:
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(CANDIDATE_DELIMITERS)).delimiter
    except csv.Error:
        # The sniffer wants consistency across lines; fall back to the header's most frequent candidate.
        counts = {candidate: lines[0].count(candidate) for candidate in CANDIDATE_DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


class TableReader:
    """Reads one file; ``info`` after :meth:`open`, rows from :meth:`rows` (restartable)."""

    def __init__(self, path: Path | str, *, original_name: str | None = None, delimiter: str | None = None):
        self.path = Path(path)
        self.name = original_name or self.path.name
        self.requested_delimiter = delimiter or None
        self.info: TableInfo | None = None

    def open(self) -> TableInfo:
        with self.path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        if not head.strip(b" \t\r\n\xef\xbb\xbf"):
            raise ImportFileError("empty_file", "The file is empty: there is no header and no data.")
        if _detect_binary(head, self.name) == "xlsx":
            self.info = TableInfo(format="xlsx")
        else:
            encoding = _detect_encoding(self.path)
            sample = head.decode(encoding, errors="ignore")
            delimiter = self.requested_delimiter or _sniff_delimiter(sample)
            self.info = TableInfo(format="csv", encoding=encoding, delimiter=delimiter)
        rows = self._raw_rows()
        try:
            header = next(rows)
        except StopIteration:
            raise ImportFileError("empty_file", "The file is empty: there is no header and no data.") from None
        finally:
            rows.close()
        header = [str(name).strip() if name is not None else "" for name in header]
        while header and header[-1] == "":  # trailing empty cells (spreadsheet padding)
            header.pop()
        self.info.header = header
        self._check_header(header)
        return self.info

    def _check_header(self, header: list[str]) -> None:
        if not header:
            raise ImportFileError("empty_file", "The first row is empty: the file needs a header row.")
        if self.info.format == "csv" and len(header) == 1:
            cell = header[0]
            others = [d for d in CANDIDATE_DELIMITERS if d != self.info.delimiter and d in cell]
            if others:
                found = others[0]
                raise ImportFileError(
                    "wrong_delimiter",
                    f"The header reads as a single column when split on {self.info.delimiter_name} "
                    f"({self.info.delimiter!r}), but it contains {DELIMITER_NAMES[found]}s ({found!r}): the file "
                    f"uses a different delimiter. Choose {DELIMITER_NAMES[found]} as the delimiter "
                    "(or leave it to be detected).",
                )
        blanks = [str(i + 1) for i, name in enumerate(header) if not name]
        if blanks:
            raise ImportFileError(
                "blank_header", f"Column(s) {', '.join(blanks)} have no name in the header row. Name every column."
            )
        seen: set[str] = set()
        repeated = sorted({name for name in header if name in seen or seen.add(name)})
        if repeated:
            raise ImportFileError(
                "duplicate_header", f"The header names these columns more than once: {', '.join(repeated)}."
            )

    def _raw_rows(self) -> Iterator[list]:
        if self.info.format == "xlsx":
            return self._xlsx_rows()
        return self._csv_rows()

    def _csv_rows(self) -> Iterator[list[str]]:
        with self.path.open(encoding=self.info.encoding, newline="") as handle:
            yield from csv.reader(handle, delimiter=self.info.delimiter)

    def _xlsx_rows(self) -> Iterator[list]:
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportFileError("binary_file", f"The workbook cannot be read as XLSX: {exc}.") from None
        try:
            sheet = workbook.worksheets[0]
            for row in sheet.iter_rows(values_only=True):
                yield [_xlsx_cell_text(value) for value in row]
        finally:
            workbook.close()

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(line number, cells)`` for each data row; the header is line 1. Blank lines are skipped."""
        if self.info is None:
            self.open()
        width = len(self.info.header)
        rows = self._raw_rows()
        try:
            next(rows)
            for number, row in enumerate(rows, start=2):
                if len(row) != width:
                    # Spreadsheets pad rows with empty cells; blank lines carry no data.
                    while len(row) > width and row[-1] in ("", None):
                        row = row[:-1]
                    if not any(cell not in ("", None) for cell in row):
                        continue
                yield number, row
        except csv.Error as exc:
            raise ImportFileError("malformed_csv", f"The CSV cannot be parsed: {exc}.") from None
        finally:
            rows.close()


    def row_batches(self, size: int) -> Iterator[tuple[list[int], list[list[str]]]]:
        """The rows of :meth:`rows`, ``size`` lines at a time: ``(line numbers, rows)``."""
        if self.info is None:
            self.open()
        width = len(self.info.header)
        rows = self._raw_rows()
        try:
            next(rows)
            number = 1
            while batch := list(itertools.islice(rows, size)):
                first, number = number + 1, number + len(batch)
                if all(map(width.__eq__, map(len, batch))):
                    yield list(range(first, number + 1)), batch
                    continue
                numbers, kept = [], []
                for line, row in enumerate(batch, start=first):
                    if len(row) != width:
                        while len(row) > width and row[-1] in ("", None):
                            row = row[:-1]
                        if not any(cell not in ("", None) for cell in row):
                            continue
                    numbers.append(line)
                    kept.append(row)
                yield numbers, kept
        except csv.Error as exc:
            raise ImportFileError("malformed_csv", f"The CSV cannot be parsed: {exc}.") from None
        finally:
            rows.close()


def _xlsx_cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
