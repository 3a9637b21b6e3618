"""The limits that keep a hostile file from holding a worker: checked before anything parses it.

An XLSX is a ZIP of XML parts. openpyxl (even in read-only mode) holds every shared string in
memory and trusts the sheet's cell references, so a 200 KB workbook can inflate to hundreds of
megabytes or spell a million strings. :func:`xlsx_check` inflates each part once, 64 KB at a
time, counting the bytes it actually produced (the sizes the ZIP declares can lie), the shared
strings, the cells and the highest column and row a cell names, and refuses a DTD (entity
expansion). Only a workbook within every limit reaches openpyxl, whose memory then stays within
what the limits allow. The limits are settings (``IMPORT_XLSX_*``, ``IMPORT_MAX_COLUMNS``).
"""

from __future__ import annotations

import re
import threading
import zipfile
import zlib
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from .errors import ImportFileError, cut_text

_READ_BYTES = 64 * 1024
MAX_ZIP_ENTRIES = 1000
MAX_XLSX_ROW = 1_048_576  # Excel's own last row
_MAX_TAG_BYTES = 1024 * 1024
# Tags as Excel writes them are counted with bytes.count (C speed); a part that uses namespace
# prefixes (<x:c>) is counted with the regular expressions instead. Both overcount rather than miss.
_PREFIX = rb"(?:[A-Za-z_][\w.-]{0,15}:)?"
_CELL = re.compile(rb"<" + _PREFIX + rb"c[\s/>]")
_SHARED_STRING = re.compile(rb"<" + _PREFIX + rb"si[\s/>]")
_PREFIXED_TAG = re.compile(rb"<[A-Za-z_][\w.-]{0,15}:")
_CELL_TAGS = tuple(b"<c" + end for end in (b" ", b">", b"/", b"\t", b"\n", b"\r"))
_SHARED_STRING_TAGS = tuple(b"<si" + end for end in (b" ", b">", b"/", b"\t", b"\n", b"\r"))
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def column_letters(index: int) -> str:
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _references_beyond(limit: int) -> re.Pattern:
    """A pattern for the ``r`` attributes that name a column beyond ``limit`` (``r="XFD3"``: group
    1) or a row number of 7 digits or more (``<row r="99999999">``: group 2, compared with Excel's
    last row), so that a normal sheet gives no match at all: one pass, few matches to look at."""
    letters = column_letters(limit)
    later = [f"{letters[:i]}[{chr(ord(letters[i]) + 1)}-Z][A-Z]{{{len(letters) - i - 1}}}"
             for i in range(len(letters)) if letters[i] != "Z"]
    column = "|".join([f"[A-Z]{{{len(letters) + 1},8}}", *later])
    return re.compile(rf"""\sr\s*=\s*["']\$?(?:({column})\$?[0-9]|([0-9]{{7,20}})["'])""".encode(), re.IGNORECASE)


def column_letters_index(letters: bytes) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + letter - 64
    return index


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.0f} MB"


def _too_large(limit: int) -> ImportFileError:
    return ImportFileError(
        "xlsx_too_large",
        _("The workbook unpacks to more than %(size)s of XML (the largest accepted; "
          "IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES). An XLSX that small on disk and that large inside is not a normal "
          "export: save the sheet as CSV (UTF-8) and upload that, or split it.") % {"size": _megabytes(limit)},
    )


def too_many_columns(count: int | str) -> ImportFileError:
    limit = settings.IMPORT_MAX_COLUMNS
    return ImportFileError(
        "too_many_columns",
        _("The file has %(count)s columns; an import accepts at most %(limit)s (IMPORT_MAX_COLUMNS). Remove the "
          "columns you do not need (keep the id and the features you want), or split them over several files that "
          "share the id column.") % {"count": count, "limit": limit},
    )


class _PartScan:
    """Counts over one inflated part, fed chunk by chunk (matches across chunk edges found once)."""

    def __init__(self, *, cells: bool, strings: bool, references_beyond: re.Pattern):
        self.cells_wanted, self.strings_wanted = cells, strings
        self.references_beyond = references_beyond
        self.carry = b""
        self.cells = self.strings = 0
        self.max_column = self.max_row = 0
        self.dtd = False

    def feed(self, data: bytes, final: bool = False) -> None:
        buffer = self.carry + data
        # Every match lies inside one tag, and a tag holds no other "<" (not even in its
        # attribute values), so counting up to the last "<" and carrying the rest over to the next
        # read finds each match exactly once.
        cut = len(buffer) if final else buffer.rfind(b"<")
        if cut < 0:  # inside a long text: no tag starts here
            self.carry = b""
            return
        part, self.carry = buffer[:cut], buffer[cut:]
        if len(self.carry) > _MAX_TAG_BYTES:
            raise ImportFileError("binary_file", _("The workbook holds more than 1 MB of XML without a tag (a "
                                                   "cell holds at most 32,767 characters): it is damaged or made "
                                                   "to be refused. Save it again as XLSX or CSV."))
        if b"<!" in part and _DTD.search(part):
            self.dtd = True
        prefixed = b":" in part and _PREFIXED_TAG.search(part) is not None
        if self.cells_wanted:
            if prefixed:
                self.cells += len(_CELL.findall(part))
            else:
                self.cells += sum(map(part.count, _CELL_TAGS))
            for letters, digits in self.references_beyond.findall(part):
                if letters:
                    self.max_column = max(self.max_column, column_letters_index(letters))
                else:
                    self.max_row = max(self.max_row, int(digits))
        if self.strings_wanted:
            if prefixed:
                self.strings += len(_SHARED_STRING.findall(part))
            else:
                self.strings += sum(map(part.count, _SHARED_STRING_TAGS))


# The workbooks this process found within the limits: the mapping page reads a workbook's first
# rows several times per request (preview, outcome values), each time with a fresh reader.
_PASSED: dict[tuple, None] = {}
_PASSED_KEPT = 32
_PASSED_LOCK = threading.Lock()


def xlsx_check(path: Path) -> None:
    """Refuse a workbook that crosses a limit, reading it as a stream. Raises ImportFileError."""
    max_bytes = settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES
    max_strings = settings.IMPORT_XLSX_MAX_SHARED_STRINGS
    max_cells = settings.IMPORT_XLSX_MAX_CELLS
    max_columns = settings.IMPORT_MAX_COLUMNS
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, max_bytes, max_strings, max_cells, max_columns)
    if key in _PASSED:
        return
    _xlsx_check(path, max_bytes, max_strings, max_cells, max_columns)
    with _PASSED_LOCK:
        if len(_PASSED) >= _PASSED_KEPT:
            _PASSED.pop(next(iter(_PASSED)))
        _PASSED[key] = None


def _xlsx_check(path: Path, max_bytes: int, max_strings: int, max_cells: int, max_columns: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise ImportFileError(
                    "xlsx_too_large", _("The workbook holds %(parts)s parts; a spreadsheet export has a few "
                                        "dozen. Save the sheet as CSV (UTF-8) and upload that.")
                    % {"parts": len(entries)})
            if sum(entry.file_size for entry in entries) > max_bytes:
                raise _too_large(max_bytes)
            inflated = cells = strings = max_column = max_row = 0
            references_beyond = _references_beyond(max_columns)
            for entry in entries:
                name = entry.filename
                scan = _PartScan(cells=name.startswith("xl/worksheets/"), strings=name == "xl/sharedStrings.xml",
                                 references_beyond=references_beyond)
                with archive.open(entry) as stream:
                    while data := stream.read(_READ_BYTES):
                        inflated += len(data)
                        if inflated > max_bytes:
                            raise _too_large(max_bytes)
                        scan.feed(data)
                        if scan.dtd:
                            break
                scan.feed(b"", final=True)
                if scan.dtd:
                    raise ImportFileError(
                        "xlsx_dtd",
                        _("The workbook's part %(part)s declares a DTD or entities, which Excel never writes "
                          "and which can expand without bound; it is refused. Open it in a spreadsheet program, "
                          "save it again as XLSX or CSV, and upload that.") % {"part": repr(name[:100])})
                cells += scan.cells
                strings += scan.strings
                max_column, max_row = max(max_column, scan.max_column), max(max_row, scan.max_row)
                if strings > max_strings:
                    raise ImportFileError(
                        "xlsx_too_many_strings",
                        _("The workbook holds more than %(limit)s distinct texts (shared strings; "
                          "IMPORT_XLSX_MAX_SHARED_STRINGS). Save the sheet as CSV (UTF-8) and upload that, or "
                          "split it.") % {"limit": f"{max_strings:,}"})
                if cells > max_cells:
                    raise ImportFileError(
                        "xlsx_too_many_cells",
                        _("The workbook holds more than %(limit)s cells (IMPORT_XLSX_MAX_CELLS). Save the sheet "
                          "as CSV (UTF-8) and upload that, or split it into several files.")
                        % {"limit": f"{max_cells:,}"})
                if max_column > max_columns:
                    raise too_many_columns(_("cells in column %(column)s and so at least %(column)s")
                                           % {"column": f"{max_column:,}"})
                if max_row > MAX_XLSX_ROW:
                    raise ImportFileError(
                        "binary_file", _("The workbook names row %(row)s, beyond Excel's last row (%(last)s): "
                                         "it is damaged. Save it again as XLSX or CSV.")
                        % {"row": f"{max_row:,}", "last": f"{MAX_XLSX_ROW:,}"})
    except ImportFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        # RuntimeError: an encrypted part; NotImplementedError: a compression method zipfile lacks.
        raise ImportFileError(
            "binary_file", _("The workbook cannot be read as XLSX: %(error)s. Save it again as XLSX or CSV and "
                             "upload that.") % {"error": shorten(str(exc), 200)}) from None


def shorten(text, limit: int) -> str:
    """``text`` (an exception, say) as text cut to ``limit`` characters, the cut marked with an ellipsis."""
    return cut_text(str(text), limit)
