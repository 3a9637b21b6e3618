"""Reading a OneRoster 1.2 CSV export (the 1.1 layout too): a zip, or the CSV files themselves.

:func:`roster_files` takes what was uploaded and returns each known file's text, refusing a file
set that cannot be a roster with one specific :class:`ImportFileError` (unknown or missing files,
a zip that inflates beyond ``ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES``, text that is not UTF-8, a
header without a required column). :func:`roster_read` then checks every row and returns the
rows normalised (:class:`RosterData`) with a list of row errors (file, row, column, value,
reason); it touches no database. Matching against what the institution already has is the
import service's work (``courses.roster_import``).
"""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from zlib import error as zlib_error

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from students.importing.errors import ImportFileError, cut_text

# file stem -> columns without which no row of the file can be read
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "name"),
    "academicSessions": ("sourcedId", "title", "type", "startDate", "endDate"),
    "courses": ("sourcedId", "title"),
    "classes": ("sourcedId", "title", "courseSourcedId", "termSourcedIds"),
    "users": ("sourcedId",),
    "enrollments": ("sourcedId", "classSourcedId", "userSourcedId", "role"),
}
OPTIONAL_FILES = ("roles",)  # OneRoster 1.2 moved a user's roles here from users.csv
ROLES_COLUMNS = ("userSourcedId", "role")
IGNORED_FILES = ("manifest", "demographics", "categories", "lineItems", "results", "classResources",
                 "courseResources", "resources", "userProfiles", "lineItemLearningObjectiveIds",
                 "lineItemScoreScales", "resultLearningObjectiveIds", "resultScoreScales", "scoreScales",
                 "assessmentLineItems", "assessmentResults")
SESSION_TYPES = ("schoolYear", "term", "semester", "gradingPeriod")
STATUSES = ("", "active", "tobedeleted")
STUDENT_ID_FIELDS = ("sourcedId", "identifier", "username")
MAX_ERRORS_KEPT = 200
_ZIP_MAX_ENTRIES = 200
_READ_BYTES = 64 * 1024


@dataclass
class RosterData:
    """The rows of one roster, keyed by ``sourcedId``; ``deleted``: the sourcedIds marked
    ``tobedeleted`` per kind. Each row keeps ``_file`` and ``_row`` for error messages."""

    sessions: dict[str, dict] = field(default_factory=dict)
    courses: dict[str, dict] = field(default_factory=dict)
    sections: dict[str, dict] = field(default_factory=dict)
    instructors: dict[str, dict] = field(default_factory=dict)
    teaching: dict[str, dict] = field(default_factory=dict)
    enrolments: dict[str, dict] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)

    KINDS = ("sessions", "courses", "sections", "instructors", "teaching", "enrolments")

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in (*self.KINDS, "deleted", "skipped", "files", "ignored_files")}

    @classmethod
    def from_dict(cls, data: dict) -> RosterData:
        return cls(**{name: data.get(name, {} if name not in ("files", "ignored_files") else [])
                      for name in (*cls.KINDS, "deleted", "skipped", "files", "ignored_files")})


class RowErrors:
    """Row errors as a person reads them: the file, the row as a spreadsheet numbers it (header = 1)."""

    def __init__(self):
        self.items: list[dict] = []
        self.total = 0

    def add(self, file: str, row: int, column: str, value, reason: str) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS_KEPT:
            self.items.append({"file": f"{file}.csv", "row": row, "column": column,
                               "value": cut_text(str(value), 200), "reason": reason})

    def __bool__(self) -> bool:
        return self.total > 0


# --- the file set ------------------------------------------------------------------------------

def _stem(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.name[:-4] if path.name.lower().endswith(".csv") else ""


def _known(stem: str) -> str | None:
    """The canonical name of a known file (OneRoster names are case-sensitive; exports are not)."""
    for known in (*REQUIRED_COLUMNS, *OPTIONAL_FILES, *IGNORED_FILES):
        if stem.lower() == known.lower():
            return known
    return None


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """The member's bytes, counting what inflating actually produces (a declared size can lie)."""
    chunks, produced = [], 0
    with archive.open(info) as member:
        while chunk := member.read(_READ_BYTES):
            produced += len(chunk)
            if produced > budget:
                raise ImportFileError("roster_too_large", (
                    f"The zip's CSV files inflate to more than {settings.ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES:,} "
                    "bytes (ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES). Nothing was imported; split the export by "
                    "school or term."))
            chunks.append(chunk)
    return b"".join(chunks)


def _from_zip(content: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ImportFileError("roster_bad_zip", f"The file is not a readable zip archive ({exc}). "
                                                "Nothing was imported.") from None
    if len(members) > _ZIP_MAX_ENTRIES:
        raise ImportFileError("roster_bad_zip", f"The zip holds {len(members)} entries; a OneRoster export "
                                                f"holds at most a few dozen ({_ZIP_MAX_ENTRIES} accepted).")
    files, budget = {}, settings.ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES
    for info in members:
        if info.is_dir() or PurePosixPath(info.filename).name.startswith("."):
            continue
        try:
            files[info.filename] = _inflate(archive, info, budget)
        except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError, zlib_error) as exc:
            raise ImportFileError("roster_bad_zip", f"{info.filename} in the zip cannot be read ({exc}). "
                                                    "Nothing was imported.") from None
        budget -= len(files[info.filename])
    return files


def roster_files(uploads: list[tuple[str, bytes]]) -> tuple[dict[str, str], list[str]]:
    """``uploads``: (name, bytes) of one zip or of the CSV files. Returns the text of each known
    file by its stem, and the names of files that were ignored."""
    if not uploads:
        raise ImportFileError("roster_no_files", "No file was uploaded: send the export's zip or its CSV files.")
    if len(uploads) == 1 and (uploads[0][0].lower().endswith(".zip") or uploads[0][1][:4] == b"PK\x03\x04"):
        named = _from_zip(uploads[0][1])
    else:
        named = dict(uploads)
    texts, ignored, unknown = {}, [], []
    for name, content in named.items():
        known = _known(_stem(name))
        if known is None:
            unknown.append(name)
            continue
        if known in IGNORED_FILES:
            ignored.append(name)
            continue
        if known in texts:
            raise ImportFileError("roster_duplicate_file", f"{known}.csv appears twice. Send each file once.")
        try:
            texts[known] = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFileError("roster_not_utf8", (
                f"{known}.csv is not UTF-8 text (byte {exc.start} cannot be read). OneRoster files are UTF-8: "
                "export again, or save the file as CSV UTF-8. Nothing was imported.")) from None
    if unknown:
        raise ImportFileError("roster_unknown_file", (
            f"Not a OneRoster file: {', '.join(sorted(unknown)[:10])}. Expected orgs.csv, academicSessions.csv, "
            "courses.csv, classes.csv, users.csv and enrollments.csv (and optionally roles.csv, manifest.csv)."))
    missing = [f"{stem}.csv" for stem in REQUIRED_COLUMNS if stem not in texts]
    if missing:
        raise ImportFileError("roster_missing_file", (
            f"The roster lacks {', '.join(missing)}. A OneRoster export has orgs.csv, academicSessions.csv, "
            "courses.csv, classes.csv, users.csv and enrollments.csv. Nothing was imported."))
    return texts, sorted(ignored)


# --- rows --------------------------------------------------------------------------------------

def _rows(stem: str, text: str, required: tuple[str, ...], budget: list[int]) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("roster_empty_file", f"{stem}.csv is empty: it needs at least its header row.")
        header = [column.strip() for column in header]
        duplicated = sorted({column for column in header if header.count(column) > 1 and column})
        if duplicated:
            raise ImportFileError("roster_duplicate_column",
                                  f"{stem}.csv has the column {', '.join(duplicated)} more than once.")
        missing = [column for column in required if column not in header]
        if missing:
            raise ImportFileError("roster_missing_column", (
                f"{stem}.csv lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(its header: {', '.join(header[:20]) or 'empty'}). OneRoster column names are case-sensitive."))
        rows = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            budget[0] -= 1
            if budget[0] < 0:
                raise ImportFileError("roster_too_many_rows", (
                    f"The roster has more than {settings.ROSTER_IMPORT_MAX_ROWS:,} rows (ROSTER_IMPORT_MAX_ROWS). "
                    "Nothing was imported; split the export by school or term."))
            if len(values) > len(header):
                raise ImportFileError("roster_bad_row", (
                    f"{stem}.csv row {reader.line_num} has {len(values)} values but the header names "
                    f"{len(header)} columns (a comma inside a value must be quoted)."))
            rows.append((reader.line_num, {column: (values[i].strip() if i < len(values) else "")
                                           for i, column in enumerate(header)}))
        return rows
    except csv.Error as exc:
        raise ImportFileError("roster_bad_csv", f"{stem}.csv cannot be read as CSV near line {reader.line_num}: "
                                                f"{exc}. Nothing was imported.") from None


def _date(value: str) -> str | None:
    """ISO date (OneRoster: YYYY-MM-DD) or None for an unreadable one; a datetime keeps its date."""
    try:
        return datetime.date.fromisoformat(value[:10]).isoformat() if len(value) >= 10 else None
    except ValueError:
        return None


class _Reader:
    def __init__(self, texts: dict[str, str], student_id_field: str):
        self.errors = RowErrors()
        self.data = RosterData()
        self.student_id_field = student_id_field
        budget = [settings.ROSTER_IMPORT_MAX_ROWS]
        self.rows = {stem: _rows(stem, texts[stem], required, budget) for stem, required in REQUIRED_COLUMNS.items()}
        self.roles = _rows("roles", texts["roles"], ROLES_COLUMNS, budget) if "roles" in texts else []

    def _base(self, stem: str, line: int, row: dict, kind: str, seen: set) -> str | None:
        """The row's sourcedId when it is to be kept (None: an error or a deletion, noted)."""
        source_id, status = row["sourcedId"], row.get("status", "")
        if not source_id:
            self.errors.add(stem, line, "sourcedId", "", "is required")
            return None
        if source_id in seen:
            self.errors.add(stem, line, "sourcedId", source_id, f"appears twice in {stem}.csv")
            return None
        seen.add(source_id)
        if status not in STATUSES:
            self.errors.add(stem, line, "status", status, "must be blank, active or tobedeleted")
            return None
        if status == "tobedeleted":
            if kind:
                self.data.deleted.setdefault(kind, []).append(source_id)
            return None
        return source_id

    def _optional_date(self, stem, line, row, column) -> tuple[bool, str | None]:
        value = row.get(column, "")
        if not value:
            return True, None
        parsed = _date(value)
        if parsed is None:
            self.errors.add(stem, line, column, value, "is not a date (YYYY-MM-DD)")
            return False, None
        return True, parsed

    def read(self) -> RosterData:
        orgs = {}
        seen: set = set()
        for line, row in self.rows["orgs"]:
            if (sid := self._base("orgs", line, row, "", seen)) is not None:
                orgs[sid] = row["name"]
        self._sessions()
        self._courses(orgs)
        self._sections(orgs)
        self._users_and_enrolments()
        return self.data

    def _sessions(self):
        seen: set = set()
        for line, row in self.rows["academicSessions"]:
            sid = self._base("academicSessions", line, row, "sessions", seen)
            if sid is None:
                continue
            ok = True
            if not row["title"]:
                self.errors.add("academicSessions", line, "title", "", "is required")
                ok = False
            if row["type"] not in SESSION_TYPES:
                self.errors.add("academicSessions", line, "type", row["type"],
                                f"must be one of {', '.join(SESSION_TYPES)}")
                ok = False
            start, end = _date(row["startDate"]), _date(row["endDate"])
            if start is None:
                self.errors.add("academicSessions", line, "startDate", row["startDate"], "is not a date (YYYY-MM-DD)")
                ok = False
            if end is None:
                self.errors.add("academicSessions", line, "endDate", row["endDate"], "is not a date (YYYY-MM-DD)")
                ok = False
            if start and end and end < start:
                self.errors.add("academicSessions", line, "endDate", row["endDate"], "is before startDate")
                ok = False
            if ok:
                self.data.sessions[sid] = {"title": row["title"], "kind": row["type"], "start_date": start,
                                           "end_date": end, "school_year": row.get("schoolYear", "")[:16],
                                           "_file": "academicSessions", "_row": line}

    def _courses(self, orgs):
        seen: set = set()
        for line, row in self.rows["courses"]:
            sid = self._base("courses", line, row, "courses", seen)
            if sid is None:
                continue
            if not row["title"]:
                self.errors.add("courses", line, "title", "", "is required")
                continue
            org = row.get("orgSourcedId", "")
            if org and org not in orgs:
                self.errors.add("courses", line, "orgSourcedId", org, "is not an org of orgs.csv")
                continue
            self.data.courses[sid] = {"title": row["title"], "course_code": row.get("courseCode", "")[:100],
                                      "org_name": orgs.get(org, "")[:255], "_file": "courses", "_row": line}

    def _sections(self, orgs):
        seen: set = set()
        for line, row in self.rows["classes"]:
            sid = self._base("classes", line, row, "sections", seen)
            if sid is None:
                continue
            ok = True
            for column in ("title", "courseSourcedId", "termSourcedIds"):
                if not row[column]:
                    self.errors.add("classes", line, column, "", "is required")
                    ok = False
            school = row.get("schoolSourcedId", "")
            if school and school not in orgs:
                self.errors.add("classes", line, "schoolSourcedId", school, "is not an org of orgs.csv")
                ok = False
            if ok:
                terms = sorted({term.strip() for term in row["termSourcedIds"].split(",") if term.strip()})
                self.data.sections[sid] = {
                    "course": row["courseSourcedId"], "terms": terms, "title": row["title"][:255],
                    "class_code": row.get("classCode", "")[:100], "class_type": row.get("classType", "")[:32],
                    "location": row.get("location", "")[:255], "periods": row.get("periods", "")[:255],
                    "school_name": orgs.get(school, "")[:255], "_file": "classes", "_row": line,
                }

    def _users_and_enrolments(self):
        users, seen = {}, set()
        for line, row in self.rows["users"]:
            sid = self._base("users", line, row, "instructors", seen)
            if sid is not None:
                users[sid] = (line, row)
        # A user's roles: users.csv's role (1.1) or roles.csv (1.2).
        teachers = {sid for sid, (_, row) in users.items() if row.get("role", "") == "teacher"}
        teachers |= {row["userSourcedId"] for _, row in self.roles
                     if row["role"] == "teacher" and row.get("status", "") != "tobedeleted"}
        seen = set()
        for line, row in self.rows["enrollments"]:
            sid = self._base("enrollments", line, row, "", seen)
            if sid is None:
                if row.get("status") == "tobedeleted" and row["sourcedId"]:
                    # Which kind it was is known from the database, not the row: the service looks in both.
                    self.data.deleted.setdefault("enrolment_rows", []).append(row["sourcedId"])
                continue
            role = row["role"]
            ok, begin = self._optional_date("enrollments", line, row, "beginDate")
            ok2, end = self._optional_date("enrollments", line, row, "endDate")
            if not (ok and ok2):
                continue
            for column in ("classSourcedId", "userSourcedId"):
                if not row[column]:
                    self.errors.add("enrollments", line, column, "", "is required")
                    ok = False
            if not ok:
                continue
            user = row["userSourcedId"]
            common = {"section": row["classSourcedId"], "begin_date": begin, "end_date": end,
                      "_file": "enrollments", "_row": line}
            if role == "teacher":
                primary = row.get("primary", "").lower()
                if primary not in ("", "true", "false"):
                    self.errors.add("enrollments", line, "primary", row["primary"], "must be true or false")
                    continue
                teachers.add(user)
                self.data.teaching[sid] = {**common, "instructor": user, "primary": primary == "true"}
            elif role == "student":
                if user in users:
                    key = users[user][1].get(self.student_id_field, "")
                    if not key:
                        self.errors.add("users", users[user][0], self.student_id_field, "",
                                        "is blank, and students are matched on it")
                        continue
                elif self.student_id_field == "sourcedId":
                    key = user
                else:
                    self.errors.add("enrollments", line, "userSourcedId", user, (
                        f"is not in users.csv, so its {self.student_id_field} (which students are matched on) "
                        "is unknown"))
                    continue
                self.data.enrolments[sid] = {**common, "student": key}
            elif role in ("administrator", "proctor", "aide", "guardian", "parent", "relative"):
                self.data.skipped["other_roles"] = self.data.skipped.get("other_roles", 0) + 1
            else:
                self.errors.add("enrollments", line, "role", role, "must be student, teacher, administrator, "
                                                                   "proctor or aide")
        for sid in sorted(teachers):
            if sid in users:
                line, row = users[sid]
                if row.get("email"):
                    try:
                        validate_email(row["email"])
                    except ValidationError:
                        self.errors.add("users", line, "email", row["email"], "is not an email address")
                        continue
                self.data.instructors[sid] = {
                    "given_name": row.get("givenName", "")[:200], "family_name": row.get("familyName", "")[:200],
                    "email": row.get("email", "")[:254], "identifier": row.get("identifier", "")[:255],
                    "_file": "users", "_row": line,
                }


def roster_read(texts: dict[str, str], *, student_id_field: str = "sourcedId") -> tuple[RosterData, RowErrors]:
    if student_id_field not in STUDENT_ID_FIELDS:
        raise ImportFileError("roster_bad_option", f"Students can be matched on {', '.join(STUDENT_ID_FIELDS)}, "
                                                   f"not {cut_text(student_id_field, 40)!r}.")
    reader = _Reader(texts, student_id_field)
    data = reader.read()
    return data, reader.errors
