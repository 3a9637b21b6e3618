"""Open an uploaded CSV or XLSX file and stream its rows, refusing what is not a table.

CSV: UTF-8 with or without BOM, else Windows-1252; the delimiter is sniffed among , ; tab |
unless one is given; quoted fields and CRLF/LF line ends are handled by :mod:`csv`.
Excel's ``sep=;`` first line names the delimiter and is not part of the table.
XLSX: the first sheet, read with openpyxl in read-only mode (rows are streamed, not loaded), once
:func:`.limits.xlsx_check` has found the workbook within the limits.
Header names are stripped of surrounding whitespace (the UCI export ends one with a tab).
Rows whose cells are all empty (blank lines, ``;;;`` lines) carry no data and are skipped.
A NUL byte (or character) anywhere is refused with its line (or cell): PostgreSQL stores none.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import ParseError

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .errors import ImportFileError
from .limits import shorten, too_many_columns, xlsx_check

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
# The same names in the reader's language, for messages (DELIMITER_NAMES stays the stored, English form).
DELIMITER_WORDS = {",": gettext_lazy("comma"), ";": gettext_lazy("semicolon"), "\t": gettext_lazy("tab"),
                   "|": gettext_lazy("vertical bar")}
DELIMITER_PLURALS = {",": gettext_lazy("commas"), ";": gettext_lazy("semicolons"), "\t": gettext_lazy("tabs"),
                     "|": gettext_lazy("vertical bars")}
_SNIFF_BYTES = 64 * 1024
MAX_HEADER_NAME = 200
MAX_XLSX_CELL = 32_767  # Excel's own limit on a cell's length
_SEP_LINE = re.compile(r"\Asep=(.)\r?\n?\Z", re.IGNORECASE)
_MAGIC = {
    b"\x1f\x8b": gettext_lazy("a gzip archive"),
    b"BZh": gettext_lazy("a bzip2 archive"),
    b"\xfd7zXZ": gettext_lazy("an xz archive"),
    b"7z\xbc\xaf": gettext_lazy("a 7-Zip archive"),
    b"Rar!": gettext_lazy("a RAR archive"),
    b"%PDF": gettext_lazy("a PDF document"),
    b"\xd0\xcf\x11\xe0": gettext_lazy("an old Excel (.xls) or other OLE document"),
    b"\x89PNG": gettext_lazy("a PNG image"),
    b"\xff\xd8\xff": gettext_lazy("a JPEG image"),
    b"SQLite format 3": gettext_lazy("an SQLite database"),
}


@dataclass
class TableInfo:
    format: str  # "csv" or "xlsx"
    encoding: str = ""
    delimiter: str = ""
    header: list[str] = field(default_factory=list)
    sep_line: bool = False  # the file starts with Excel's "sep=;" line, which is skipped

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


PAGE_CHANNEL = "page"  # ImportChannel.PAGE (models import this module's package: no import back)


def channel_size_limit(channel: str) -> tuple[int, str]:
    """The largest file (bytes) a channel takes, and the setting that says it: the upload page
    IMPORT_MAX_FILE_BYTES; the API and the CLI IMPORT_MAX_BULK_FILE_BYTES (never below the page's)."""
    if channel == PAGE_CHANNEL:
        return settings.IMPORT_MAX_FILE_BYTES, "IMPORT_MAX_FILE_BYTES"
    return max(settings.IMPORT_MAX_BULK_FILE_BYTES, settings.IMPORT_MAX_FILE_BYTES), "IMPORT_MAX_BULK_FILE_BYTES"


def check_size(size: int, limit: int, setting: str = "IMPORT_MAX_FILE_BYTES") -> None:
    if size > limit:
        if setting == "IMPORT_MAX_FILE_BYTES" and limit < settings.IMPORT_MAX_BULK_FILE_BYTES:
            hint = _("Send it through the API or manage.py import_students (they take files up to %(bulk)s MB), "
                     "split it into several files, or ask the operator to raise %(setting)s.") % {
                "bulk": f"{settings.IMPORT_MAX_BULK_FILE_BYTES / 1_048_576:,.0f}", "setting": setting}
        else:
            hint = _("Split it into several files or ask the operator to raise %(setting)s.") % {"setting": setting}
        raise ImportFileError(
            "file_too_large",
            _("The file is %(size)s MB; the largest accepted file is %(limit)s MB. %(hint)s") % {
                "size": f"{size / 1_048_576:.1f}", "limit": f"{limit / 1_048_576:,.0f}", "hint": hint},
        )


def check_channel_size(size: int, channel: str) -> None:
    """Refuse a file larger than its channel takes (see :func:`channel_size_limit`)."""
    limit, setting = channel_size_limit(channel)
    check_size(size, limit, setting)


def _detect_binary(head: bytes, name: str) -> str | None:
    """'xlsx' for a real workbook; raise for any other binary content; None for text."""
    if head.startswith(b"PK\x03\x04"):
        if name.lower().endswith((".xlsx", ".xlsm")):
            return "xlsx"
        kind = _("a ZIP archive")
        try:
            with zipfile.ZipFile(io.BytesIO(head)) as archive:  # best effort: the head may be truncated
                if any(item.startswith("xl/") for item in archive.namelist()):
                    return "xlsx"
        except zipfile.BadZipFile:
            pass
        raise ImportFileError(
            "binary_file", _("This is %(kind)s, not a CSV file. Unpack it and upload the CSV or XLSX inside.")
            % {"kind": kind}
        )
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise ImportFileError(
                "binary_file", _("This is %(kind)s, not a CSV or XLSX file, even if it is named %(name)s.")
                % {"kind": kind, "name": repr(name)}
            )
    if b"\x00" in head:
        offset = head.index(b"\x00")
        line = head.count(b"\n", 0, offset) + 1
        raise ImportFileError(
            "binary_file",
            _("The file contains NUL bytes (the first on line %(line)s, byte offset %(offset)s): it is a binary "
              "file (or UTF-16 text), not a CSV. Save it as CSV (UTF-8) or XLSX and upload again.")
            % {"line": line, "offset": offset},
        )
    return None


def _nul_byte(line: int, offset: int) -> ImportFileError:
    return ImportFileError(
        "nul_byte",
        _("The file contains a NUL byte (a zero byte, which no text holds) on line %(line)s (byte offset "
          "%(offset)s). The file is damaged or was cut from a binary export: remove that character (or export the "
          "file again as CSV UTF-8) and upload again.") % {"line": line, "offset": offset},
        details=[{"line": line, "offset": offset}],
    )


def _detect_encoding(path: Path, limit: int | None = None) -> str:
    """UTF-8 (BOM or not) if the whole file (or its first ``limit`` bytes) decodes as such, else
    Windows-1252; else refuse. A NUL byte anywhere is refused with its line and offset."""
    with path.open("rb") as handle:
        start = handle.read(3)
    encodings = ("utf-8-sig", "cp1252") if start == codecs.BOM_UTF8 else ("utf-8", "cp1252")
    offset = 0
    for encoding in encodings:
        decoder = codecs.getincrementaldecoder(encoding)()
        consumed = lines = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20 if limit is None else min(1 << 20, limit - consumed)):
                    if b"\x00" in chunk:
                        at = chunk.index(b"\x00")
                        raise _nul_byte(lines + chunk.count(b"\n", 0, at) + 1, consumed + at)
                    lines += chunk.count(b"\n")
                    pending = consumed - len(decoder.getstate()[0])
                    decoder.decode(chunk)
                    consumed += len(chunk)
                # A head cut in the middle of a character is not an error; the rest is read later.
                decoder.decode(b"", final=limit is None or consumed < limit)
            return encoding
        except UnicodeDecodeError as exc:
            offset = max(0, pending) + exc.start  # the last encoding tried decides the message
    with path.open("rb") as handle:
        before = handle.read(offset + 1)
    line = before[:offset].count(b"\n") + 1
    raise ImportFileError(
        "undecodable",
        _("The file is neither UTF-8 nor Windows-1252 text: byte 0x%(byte)s on line %(line)s (byte offset "
          "%(offset)s) cannot be decoded. Save it as CSV UTF-8 and upload again.")
        % {"byte": before[offset:offset + 1].hex(), "line": line, "offset": offset},
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

    def __init__(self, path: Path | str, *, original_name: str | None = None, delimiter: str | None = None,
                 head_bytes: int | None = None):
        """``head_bytes``: read only the file's beginning (a preview's rows, within a web request);
        the whole file is checked when it is validated."""
        self.path = Path(path)
        self.name = original_name or self.path.name
        self.requested_delimiter = delimiter or None
        self.head_bytes = head_bytes
        self.info: TableInfo | None = None
        self._xlsx_checked = False

    def open(self) -> TableInfo:
        with self.path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        if not head.strip(b" \t\r\n\xef\xbb\xbf"):
            raise ImportFileError("empty_file", _("The file is empty: there is no header and no data."))
        if _detect_binary(head, self.name) == "xlsx":
            self.info = TableInfo(format="xlsx")
        else:
            encoding = _detect_encoding(self.path, self.head_bytes)
            sample = head.decode(encoding, errors="ignore")
            first_line = sample.removeprefix("\ufeff").split("\n", 1)[0]
            sep = _SEP_LINE.match(first_line + "\n")
            if sep:
                sample = sample.removeprefix("\ufeff").split("\n", 1)[1] if "\n" in sample else ""
            delimiter = self.requested_delimiter or (sep.group(1) if sep else _sniff_delimiter(sample))
            self.info = TableInfo(format="csv", encoding=encoding, delimiter=delimiter, sep_line=bool(sep))
        rows = self._raw_rows()
        try:
            header = next(rows)
        except StopIteration:
            raise ImportFileError("empty_file", _("The file is empty: there is no header and no data.")) from None
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
            raise ImportFileError("empty_file", _("The first row is empty: the file needs a header row."))
        if len(header) > settings.IMPORT_MAX_COLUMNS:
            raise too_many_columns(len(header))
        long_names = [str(i + 1) for i, name in enumerate(header) if len(name) > MAX_HEADER_NAME]
        if long_names:
            raise ImportFileError(
                "header_too_long",
                _("Column(s) %(columns)s have names longer than %(limit)s characters: the first row does not "
                  "look like a header. Give every column a short name.")
                % {"columns": ", ".join(long_names[:10]), "limit": MAX_HEADER_NAME})
        if self.info.format == "csv" and len(header) == 1:
            cell = header[0]
            others = [d for d in CANDIDATE_DELIMITERS if d != self.info.delimiter and d in cell]
            if others:
                found = others[0]
                raise ImportFileError(
                    "wrong_delimiter",
                    _("The header reads as a single column when split on %(used)s (%(used_char)s), but it "
                      "contains %(found_plural)s (%(found_char)s): the file uses a different delimiter. Choose "
                      "%(found)s as the delimiter (or leave it to be detected).")
                    % {"used": DELIMITER_WORDS.get(self.info.delimiter, repr(self.info.delimiter)),
                       "used_char": repr(self.info.delimiter), "found": DELIMITER_WORDS[found],
                       "found_plural": DELIMITER_PLURALS[found], "found_char": repr(found)},
                )
        blanks = [str(i + 1) for i, name in enumerate(header) if not name]
        if blanks:
            shown = ", ".join(blanks[:20]) + (", ..." if len(blanks) > 20 else "")
            raise ImportFileError(
                "blank_header", _("Column(s) %(columns)s have no name in the header row. Name every column.")
                % {"columns": shown}
            )
        seen: set[str] = set()
        repeated = sorted({name for name in header if name in seen or seen.add(name)})
        if repeated:
            shown = ", ".join(repeated[:20]) + (", ..." if len(repeated) > 20 else "")
            raise ImportFileError(
                "duplicate_header", _("The header names these columns more than once: %(columns)s.")
                % {"columns": shown}
            )

    def _raw_rows(self) -> Iterator[list]:
        if self.info.format == "xlsx":
            return self._xlsx_rows()
        return self._csv_rows()

    def _csv_text(self):
        if self.head_bytes is not None and self.path.stat().st_size > self.head_bytes:
            with self.path.open("rb") as handle:
                head = handle.read(self.head_bytes)
            head = head[:head.rfind(b"\n") + 1] or head  # whole lines only
            return io.StringIO(head.decode(self.info.encoding, errors="replace"), newline="")
        return self.path.open(encoding=self.info.encoding, newline="")

    def _csv_rows(self) -> Iterator[list[str]]:
        with self._csv_text() as handle:
            if self.info.sep_line:
                handle.readline()
            reader = csv.reader(handle, delimiter=self.info.delimiter)
            try:
                yield from reader
            except csv.Error as exc:
                raise ImportFileError(
                    "malformed_csv", _("The CSV cannot be parsed at line %(line)s: %(error)s. Look for an "
                                       "unclosed quote or an overlong cell.")
                    % {"line": reader.line_num + self.info.sep_line, "error": exc}) from None

    def _xlsx_rows(self) -> Iterator[list]:
        from openpyxl import load_workbook

        if not self._xlsx_checked:
            xlsx_check(self.path)  # the limits, before openpyxl holds anything
            self._xlsx_checked = True
        try:
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, AttributeError, IndexError,
                ParseError) as exc:
            raise ImportFileError("binary_file", _("The workbook cannot be read as XLSX: %(error)s.")
                                  % {"error": shorten(exc, 200)}) from None
        try:
            if not workbook.worksheets:
                raise ImportFileError("empty_file",
                                      _("The workbook has no worksheet: there is no header and no data."))
            sheet = workbook.worksheets[0]
            # The sheet's declared dimensions can lie (A1:XFD1048576 pads every row to 16,384
            # cells); rows are as wide as the cells they hold, which xlsx_check bounded.
            sheet.reset_dimensions()
            try:
                for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                    cells = [_xlsx_cell_text(value) for value in row]
                    for column, cell in enumerate(cells, start=1):
                        if len(cell) > MAX_XLSX_CELL or "\x00" in cell:
                            raise _bad_xlsx_cell(number, column, cell)
                    yield cells
            except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError, ParseError,
                    zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ImportFileError(
                    "binary_file", _("The workbook cannot be read as XLSX: %(error)s. Save it again as XLSX or "
                                     "CSV and upload that.") % {"error": shorten(exc, 200)}) from None
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
                if _blank(row):  # blank and separator-only lines carry no data
                    continue
                if len(row) != width:
                    # Spreadsheets pad rows with empty cells.
                    while len(row) > width and row[-1] in ("", None):
                        row = row[:-1]
                yield number, row
        except csv.Error as exc:
            raise ImportFileError("malformed_csv", _("The CSV cannot be parsed: %(error)s.") % {"error": exc}) from None
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
                if all(map(width.__eq__, map(len, batch))) and not any(map(_blank, batch)):
                    yield list(range(first, number + 1)), batch
                    continue
                numbers, kept = [], []
                for line, row in enumerate(batch, start=first):
                    if _blank(row):  # blank and separator-only lines carry no data
                        continue
                    if len(row) != width:
                        while len(row) > width and row[-1] in ("", None):
                            row = row[:-1]
                    numbers.append(line)
                    kept.append(row)
                yield numbers, kept
        except csv.Error as exc:
            raise ImportFileError("malformed_csv", _("The CSV cannot be parsed: %(error)s.") % {"error": exc}) from None
        finally:
            rows.close()


def _blank(row: list) -> bool:
    return not "".join(cell or "" for cell in row).strip()


def _bad_xlsx_cell(row: int, column: int, cell: str) -> ImportFileError:
    from openpyxl.utils import get_column_letter

    where = f"{get_column_letter(column)}{row}"
    if "\x00" in cell:
        return ImportFileError(
            "nul_byte", _("The workbook's cell %(cell)s contains a NUL character, which no text holds and the "
                          "database cannot store. Remove it and upload again.") % {"cell": where},
            details=[{"row": row, "column": column}])
    return ImportFileError(
        "cell_too_long", _("The workbook's cell %(cell)s holds %(length)s characters; a spreadsheet cell holds at "
                           "most %(limit)s. Shorten it and upload again.")
        % {"cell": where, "length": f"{len(cell):,}", "limit": f"{MAX_XLSX_CELL:,}"},
        details=[{"row": row, "column": column}])


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
