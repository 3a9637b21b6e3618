"""A small OneRoster 1.2 export built in the test: two courses, three sections, two instructors."""

from __future__ import annotations

import csv
import io
import zipfile

HEADERS = {
    "orgs": ["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"],
    "academicSessions": ["sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
                         "parentSourcedId", "schoolYear"],
    "courses": ["sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades",
                "orgSourcedId", "subjects", "subjectCodes"],
    "classes": ["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
                "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods"],
    "users": ["sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
              "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades",
              "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName", "preferredMiddleName",
              "preferredFamilyName", "primaryOrgSourcedId", "pronouns"],
    "enrollments": ["sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId", "userSourcedId",
                    "role", "primary", "beginDate", "endDate"],
}


def roster_rows() -> dict[str, list[dict]]:
    """Rows per file (dicts by column; missing columns are blank). Students are S001..S004."""
    students = [{"sourcedId": f"u-s{i}", "username": f"stu{i}", "givenName": f"Stu{i}", "familyName": "Dent",
                 "identifier": f"S00{i}"} for i in range(1, 5)]
    return {
        "orgs": [{"sourcedId": "org-1", "name": "School of Science", "type": "school"}],
        "academicSessions": [
            {"sourcedId": "t-2026a", "title": "Autumn 2026", "type": "term", "startDate": "2026-09-01",
             "endDate": "2026-12-20", "schoolYear": "2027"},
            {"sourcedId": "t-2027s", "title": "Spring 2027", "type": "term", "startDate": "2027-01-10",
             "endDate": "2027-05-30", "schoolYear": "2027"},
        ],
        "courses": [
            {"sourcedId": "c-math", "title": "Calculus I", "courseCode": "MATH101", "orgSourcedId": "org-1"},
            {"sourcedId": "c-chem", "title": "General Chemistry", "courseCode": "CHEM101", "orgSourcedId": "org-1"},
        ],
        "classes": [
            {"sourcedId": "k-math-1", "title": "Calculus I, section 1", "courseSourcedId": "c-math",
             "classCode": "MATH101-1", "classType": "scheduled", "schoolSourcedId": "org-1",
             "termSourcedIds": "t-2026a", "location": "Room 4"},
            {"sourcedId": "k-math-2", "title": "Calculus I, section 2", "courseSourcedId": "c-math",
             "classCode": "MATH101-2", "classType": "scheduled", "schoolSourcedId": "org-1",
             "termSourcedIds": "t-2026a,t-2027s"},
            {"sourcedId": "k-chem-1", "title": "Chemistry, section 1", "courseSourcedId": "c-chem",
             "classCode": "CHEM101-1", "classType": "scheduled", "schoolSourcedId": "org-1",
             "termSourcedIds": "t-2026a"},
        ],
        "users": [
            {"sourcedId": "u-t1", "username": "ada", "givenName": "Ada", "familyName": "Lovelace",
             "identifier": "T1", "email": "ada@alpha.example.edu"},
            {"sourcedId": "u-t2", "username": "emmy", "givenName": "Emmy", "familyName": "Noether",
             "identifier": "T2", "email": "emmy@alpha.example.edu"},
            *students,
        ],
        "enrollments": [
            {"sourcedId": "e-t1-m1", "classSourcedId": "k-math-1", "userSourcedId": "u-t1", "role": "teacher",
             "primary": "true"},
            {"sourcedId": "e-t1-m2", "classSourcedId": "k-math-2", "userSourcedId": "u-t1", "role": "teacher",
             "primary": "true"},
            {"sourcedId": "e-t2-c1", "classSourcedId": "k-chem-1", "userSourcedId": "u-t2", "role": "teacher",
             "primary": "true"},
            *({"sourcedId": f"e-s{i}-m1", "classSourcedId": "k-math-1", "userSourcedId": f"u-s{i}",
               "role": "student", "beginDate": "2026-09-01"} for i in (1, 2, 3)),
            *({"sourcedId": f"e-s{i}-c1", "classSourcedId": "k-chem-1", "userSourcedId": f"u-s{i}",
               "role": "student"} for i in (3, 4)),
        ],
    }


def csv_bytes(stem: str, rows: list[dict], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = header or HEADERS[stem]
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue().encode()


def roster_zip(rows: dict[str, list[dict]] | None = None, *, extra: dict[str, bytes] | None = None) -> bytes:
    rows = roster_rows() if rows is None else rows
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", b"propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,1.2\r\n")
        for stem, file_rows in rows.items():
            archive.writestr(f"{stem}.csv", csv_bytes(stem, file_rows))
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()
