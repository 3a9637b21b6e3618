"""The OneRoster roster import: preview what a file set will change, then apply it when confirmed.

Nothing is read in the web request. :func:`roster_import_upload` stores the uploaded files
(size-bounded) under MEDIA_ROOT and queues a ``roster_import`` job; the job
(:func:`roster_job_run`, step ``preview``) reads and checks the files (``courses.oneroster``),
matches them against the institution's courses, sections, terms, instructors and enrolments and
its students (by ``external_id``), and stores the preview on the :class:`RosterImport` (how many of
each kind are created, updated, unchanged and deleted, with examples, and what is skipped) and its
digest. A bad file set writes nothing: the job fails with the specific error (an
:class:`ImportFileError` for the whole upload, :class:`RosterInvalid` row errors) and the files are
removed. :func:`roster_import_confirm` queues the commit job (step ``commit``), which reads the
stored files again, plans against the database as it is then and applies the plan, all or nothing,
only if it is the one the administrator saw (its digest); otherwise the roster import waits for
confirmation again with the new preview and the job fails with ``roster_preview_changed``. No
checked row is kept in the database between the two. Upserts are keyed on
``(institution, sourcedId)``: importing the same roster twice changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from institutions.jobs import job_create, job_dispatch, job_fail, job_mark_running, job_progress, job_succeed
from institutions.models import Institution, Job, JobKind
from students.importing.errors import ImportFileError
from students.models import Student
from students.upload_files import upload_file_write

from .models import (
    AcademicSession,
    Course,
    Enrolment,
    Instructor,
    RosterImport,
    RosterImportStatus,
    Section,
    SectionTerm,
    TeachingAssignment,
)
from .oneroster import STUDENT_ID_FIELDS, RosterData, RowErrors, roster_files, roster_read

logger = logging.getLogger(__name__)
EXAMPLES_PER_KIND = 10
UNKNOWN_STUDENTS_LISTED = 20
_BATCH = 2000


class RosterInvalid(Exception):
    """Rows of the roster are wrong: ``errors`` lists them (file, row, column, value, reason)."""

    def __init__(self, errors: RowErrors):
        super().__init__(f"{errors.total} problems in the roster")
        self.errors = errors

    def as_dict(self) -> dict:
        return {"error_count": self.errors.total, "errors": self.errors.items}


@dataclass(frozen=True)
class _Kind:
    name: str
    label: str
    model: type
    fields: tuple[str, ...]
    # relation field -> (kind it points at, the lookup giving the target's key)
    links: dict = field(default_factory=dict)


KINDS = (
    _Kind("sessions", gettext_noop("terms"), AcademicSession,
          ("title", "kind", "start_date", "end_date", "school_year")),
    _Kind("courses", gettext_noop("courses"), Course, ("title", "course_code", "org_name")),
    _Kind("sections", gettext_noop("sections"), Section,
          ("title", "class_code", "class_type", "location", "periods", "school_name"),
          {"course": ("courses", "course__source_id")}),
    _Kind("instructors", gettext_noop("instructors"), Instructor,
          ("given_name", "family_name", "email", "identifier")),
    _Kind("teaching", gettext_noop("teaching assignments"), TeachingAssignment, ("primary", "begin_date", "end_date"),
          {"section": ("sections", "section__source_id"), "instructor": ("instructors", "instructor__source_id")}),
    _Kind("enrolments", gettext_noop("student enrolments"), Enrolment, ("begin_date", "end_date"),
          {"section": ("sections", "section__source_id"), "student": ("students", "student__external_id")}),
)
KIND_BY_NAME = {kind.name: kind for kind in KINDS}
# Where a row's reference is written in the file, for the error message.
_LINK_COLUMNS = {("sections", "course"): "courseSourcedId", ("teaching", "section"): "classSourcedId",
                 ("teaching", "instructor"): "userSourcedId", ("enrolments", "section"): "classSourcedId"}


def _plain(value):
    return value.isoformat() if isinstance(value, datetime.date) else value


@dataclass
class _KindPlan:
    create: list[str] = field(default_factory=list)
    update: dict[str, dict] = field(default_factory=dict)  # source id -> {field: [old, new]}
    unchanged: int = 0
    delete: dict[str, int] = field(default_factory=dict)  # source id -> row id
    ids: dict[str, int] = field(default_factory=dict)  # existing rows: source id -> row id


@dataclass
class RosterPlan:
    kinds: dict[str, _KindPlan]
    student_ids: dict[str, int]
    skipped: dict
    cascade: dict[str, int]

    def digest(self) -> str:
        canonical = {name: [sorted(plan.create), sorted(plan.update.items()), sorted(plan.delete)]
                     for name, plan in self.kinds.items()}
        canonical["cascade"] = self.cascade
        canonical["skipped"] = self.skipped
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()

    def summary(self, data: RosterData) -> dict:
        counts, examples = {}, {}
        for kind in KINDS:
            plan = self.kinds[kind.name]
            counts[kind.name] = {"create": len(plan.create), "update": len(plan.update),
                                 "unchanged": plan.unchanged, "delete": len(plan.delete)}
            rows = getattr(data, kind.name)
            shown = [{"source_id": sid, "action": "create", "label": _label(kind, rows[sid])}
                     for sid in sorted(plan.create)[:EXAMPLES_PER_KIND]]
            shown += [{"source_id": sid, "action": "update", "label": _label(kind, rows[sid]), "changes": changes}
                      for sid, changes in sorted(plan.update.items())[:EXAMPLES_PER_KIND]]
            shown += [{"source_id": sid, "action": "delete"} for sid in sorted(plan.delete)[:EXAMPLES_PER_KIND]]
            examples[kind.name] = shown
        return {"counts": counts, "examples": examples, "skipped": self.skipped, "cascade": self.cascade,
                "digest": self.digest(), "files": data.files, "ignored_files": data.ignored_files}

    @property
    def changes_anything(self) -> bool:
        return any(plan.create or plan.update or plan.delete for plan in self.kinds.values())


def _label(kind: _Kind, row: dict) -> str:
    if kind.name == "instructors":
        return f"{row['given_name']} {row['family_name']}".strip()
    if kind.name in ("teaching", "enrolments"):
        return f"{row.get('instructor') or row.get('student')} in {row['section']}"
    return row.get("title", "")


def _existing(institution: Institution, kind: _Kind) -> dict[str, dict]:
    paths = [path for _, path in kind.links.values()]
    rows = kind.model.objects.for_institution(institution).values("id", "source_id", *kind.fields, *paths)
    return {row["source_id"]: row for row in rows.iterator(chunk_size=_BATCH)}


def _existing_terms(institution: Institution) -> dict[str, list[str]]:
    terms: dict[str, list[str]] = {}
    for section, term in SectionTerm.objects.for_institution(institution).values_list(
            "section__source_id", "term__source_id").iterator(chunk_size=_BATCH):
        terms.setdefault(section, []).append(term)
    return {section: sorted(found) for section, found in terms.items()}


def roster_plan(*, institution: Institution, data: RosterData) -> tuple[RosterPlan, RowErrors]:
    """What applying ``data`` would do to ``institution`` now, and the references that do not resolve."""
    errors = RowErrors()
    existing = {kind.name: _existing(institution, kind) for kind in KINDS}
    terms_now = _existing_terms(institution)
    wanted = {row["student"] for row in data.enrolments.values()}
    student_ids = dict(Student.objects.for_institution(institution).filter(external_id__in=wanted)
                       .values_list("external_id", "id")) if wanted else {}
    plans = {kind.name: _KindPlan(ids={sid: row["id"] for sid, row in existing[kind.name].items()}) for kind in KINDS}

    # Deletions first: a row kept by the file must not point at one this roster removes.
    enrolment_rows = set(data.deleted.get("enrolment_rows", []))
    deleted = {name: set(data.deleted.get(name, [])) for name in ("sessions", "courses", "sections", "instructors")}
    deleted["teaching"], deleted["enrolments"] = enrolment_rows, enrolment_rows
    for kind in KINDS:
        for sid in sorted(deleted[kind.name]):
            if sid in existing[kind.name]:
                plans[kind.name].delete[sid] = existing[kind.name][sid]["id"]
    cascade, gone_sections = _cascade(institution, plans)
    deleted["sections"] |= gone_sections

    skipped = dict(data.skipped)
    unknown_students = sorted(wanted - set(student_ids))
    if unknown_students:
        skipped["unknown_students"] = len(unknown_students)
        skipped["unknown_student_ids"] = unknown_students[:UNKNOWN_STUDENTS_LISTED]
    for kind in KINDS:
        rows, plan, now = getattr(data, kind.name), plans[kind.name], existing[kind.name]
        for sid, row in rows.items():
            if not _links_resolve(kind, row, data, existing, deleted, student_ids, errors):
                continue
            if kind.name == "enrolments" and row["student"] not in student_ids:
                skipped["enrolments_of_unknown_students"] = skipped.get("enrolments_of_unknown_students", 0) + 1
                continue
            if kind.name == "sections" and not _terms_resolve(row, data, existing, deleted, errors):
                continue
            old = now.get(sid)
            if old is None:
                plan.create.append(sid)
                continue
            changes = {name: [_plain(old[name]), row[name]] for name in kind.fields if _plain(old[name]) != row[name]}
            for name, (_, path) in kind.links.items():
                if old[path] != row[name]:
                    changes[name] = [old[path], row[name]]
            if kind.name == "sections" and terms_now.get(sid, []) != row["terms"]:
                changes["terms"] = [terms_now.get(sid, []), row["terms"]]
            if changes:
                plan.update[sid] = changes
            else:
                plan.unchanged += 1
    return RosterPlan(kinds=plans, student_ids=student_ids, skipped=skipped, cascade=cascade), errors


def _links_resolve(kind, row, data, existing, deleted, student_ids, errors) -> bool:
    ok = True
    for name, (target, _) in kind.links.items():
        if target == "students":
            continue
        key = row[name]
        column = _LINK_COLUMNS[(kind.name, name)]
        if key in deleted[target]:
            errors.add(row["_file"], row["_row"], column, key, f"names one of the {KIND_BY_NAME[target].label} "
                                                               "this roster deletes")
            ok = False
        elif key not in getattr(data, target) and key not in existing[target]:
            where = {"courses": "courses.csv", "sections": "classes.csv", "instructors": "users.csv"}[target]
            errors.add(row["_file"], row["_row"], column, key, f"is in neither {where} nor the platform")
            ok = False
    return ok


def _terms_resolve(row, data, existing, deleted, errors) -> bool:
    ok = True
    for term in row["terms"]:
        if term in deleted["sessions"]:
            errors.add("classes", row["_row"], "termSourcedIds", term, "names a term this roster deletes")
            ok = False
        elif term not in data.sessions and term not in existing["sessions"]:
            errors.add("classes", row["_row"], "termSourcedIds", term,
                       "is in neither academicSessions.csv nor the platform")
            ok = False
    return ok


def _cascade(institution, plans) -> tuple[dict[str, int], set[str]]:
    """What goes with the deleted rows (a course's sections, a section's enrolments...)."""
    sections = Section.objects.for_institution(institution)
    cascaded_sections = dict(sections.filter(course_id__in=plans["courses"].delete.values())
                             .exclude(id__in=plans["sections"].delete.values()).values_list("source_id", "id"))
    gone_sections = [*plans["sections"].delete.values(), *cascaded_sections.values()]
    enrolments = Enrolment.objects.for_institution(institution).filter(section_id__in=gone_sections) \
        .exclude(id__in=plans["enrolments"].delete.values()).count() if gone_sections else 0
    teaching = TeachingAssignment.objects.for_institution(institution).filter(
        section_id__in=gone_sections).exclude(id__in=plans["teaching"].delete.values())
    teaching_count = (teaching | TeachingAssignment.objects.for_institution(institution).filter(
        instructor_id__in=plans["instructors"].delete.values()).exclude(id__in=plans["teaching"].delete.values())
    ).distinct().count()
    cascade = {"sections": len(cascaded_sections), "enrolments": enrolments, "teaching": teaching_count}
    return {key: value for key, value in cascade.items() if value}, set(cascaded_sections)


# --- upload, preview job, confirm (commit job), discard ------------------------------------------

def _read_uploads(uploaded_files) -> tuple[list[tuple[str, bytes]], str, int]:
    limit = settings.IMPORT_MAX_FILE_BYTES
    total = sum(upload.size or 0 for upload in uploaded_files)
    if total > limit:
        raise ImportFileError("file_too_large", (
            f"The upload is {total:,} bytes; the largest accepted is {limit:,} (IMPORT_MAX_FILE_BYTES). "
            "Nothing was imported."))
    uploads, digest = [], hashlib.sha256()
    for upload in uploaded_files:
        content = upload.read(limit + 1)
        if len(content) > limit:
            raise ImportFileError("file_too_large", f"The upload is larger than {limit:,} bytes "
                                                    "(IMPORT_MAX_FILE_BYTES). Nothing was imported.")
        digest.update(content)
        uploads.append((upload.name or "roster.csv", content))
    return uploads, digest.hexdigest(), total


def _stored_path(stored_name: str) -> Path:
    return Path(settings.MEDIA_ROOT) / stored_name


def _remove_files(roster: RosterImport) -> None:
    for _, stored in roster.files or []:
        try:
            os.remove(_stored_path(stored))
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove file %s of roster import %s: %s", stored, roster.pk, exc)


def _queue(roster: RosterImport, *, step: str, user) -> Job:
    job, _ = job_create(institution=roster.institution, kind=JobKind.ROSTER_IMPORT, created_by=user,
                        params={"roster_import_id": roster.pk, "step": step, "file": roster.original_name})
    job_dispatch(job)
    return job


def roster_import_upload(*, institution: Institution, uploaded_files: list, user: AbstractBaseUser | None,
                         student_id_field: str = "sourcedId") -> RosterImport:
    """Store the upload (size-bounded) and queue the job that checks it; nothing is read here."""
    if student_id_field not in STUDENT_ID_FIELDS:
        raise ImportFileError("roster_bad_option", f"Students can be matched on {', '.join(STUDENT_ID_FIELDS)}.")
    uploads, sha256, size = _read_uploads(uploaded_files)
    files = []
    try:
        for name, content in uploads:
            suffix = ".zip" if name.lower().endswith(".zip") else ".csv"
            stored = f"rosters/{institution.pk}/{uuid.uuid4().hex}{suffix}"
            upload_file_write(_stored_path(stored), iter([content]))
            files.append([Path(name).name[:255], stored])
    except ImportFileError:  # the disk refused one (upload_file_write says why): keep none of them
        for _, stored in files:
            _stored_path(stored).unlink(missing_ok=True)
        raise
    name = uploads[0][0] if len(uploads) == 1 else f"{len(uploads)} CSV files"
    with transaction.atomic():
        roster = RosterImport.objects.for_institution(institution).create(
            original_name=Path(name).name[:255], sha256=sha256, size=size,
            options={"student_id_field": student_id_field}, files=files, uploaded_by=user,
            status=RosterImportStatus.CHECKING)
        roster.preview_job = _queue(roster, step="preview", user=user)
        roster.save(update_fields=["preview_job", "updated_at"])
    return roster


def _read_stored(roster: RosterImport) -> RosterData:
    uploads = []
    for name, stored in roster.files:
        try:
            uploads.append((name, _stored_path(stored).read_bytes()))
        except FileNotFoundError as exc:
            raise ImportFileError("roster_files_gone", "The roster's files are no longer kept; upload them "
                                                       "again.") from exc
    texts, ignored = roster_files(uploads)
    data, errors = roster_read(texts, student_id_field=roster.options.get("student_id_field", "sourcedId"))
    if errors:
        raise RosterInvalid(errors)
    data.files, data.ignored_files = sorted(f"{stem}.csv" for stem in texts), ignored
    return data


def _refused(job: Job, roster: RosterImport, exc: Exception) -> None:
    """A bad file set: the job records the specific error; the files go, nothing else changed."""
    if isinstance(exc, RosterInvalid):
        error = f"The roster has {exc.errors.total} problem(s); nothing was imported."
        result = {"code": "roster_invalid", **exc.as_dict()}
    else:
        error, result = exc.message, {"code": exc.code, "file_error": exc.as_dict()}
    _remove_files(roster)
    RosterImport.objects.for_institution(roster.institution).filter(pk=roster.pk).update(
        status=RosterImportStatus.FAILED, files=[], result=result, updated_at=timezone.now())
    job_fail(job, error=error, result=result)


def roster_job_run(*, institution: Institution, job: Job) -> None:
    """The preview job (read and check the stored files, store the preview) or the commit job
    (read and check them again, apply all or nothing if the plan is the one previewed)."""
    roster = RosterImport.objects.for_institution(institution).filter(pk=job.params.get("roster_import_id")).first()
    if roster is None:
        job_fail(job, error="The roster import is gone (deleted); nothing was imported.")
        return
    if job.params.get("step") == "commit":
        _commit_job_run(institution, job, roster)
        return
    job_mark_running(job, stage="reading the roster", total=2)
    if roster.status != RosterImportStatus.CHECKING:
        job_fail(job, error=f"This roster import is {roster.get_status_display().lower()}; nothing to check.")
        return
    try:
        data = _read_stored(roster)
        job_progress(job, done=1, stage="matching against the platform")
        plan, errors = roster_plan(institution=institution, data=data)
        if errors:
            raise RosterInvalid(errors)
    except (ImportFileError, RosterInvalid) as exc:
        _refused(job, roster, exc)
        return
    preview = plan.summary(data)
    RosterImport.objects.for_institution(institution).filter(pk=roster.pk, status=RosterImportStatus.CHECKING) \
        .update(preview=preview, status=RosterImportStatus.PREVIEWED, updated_at=timezone.now())
    job_succeed(job, counts={name: sum(counts.values()) for name, counts in preview["counts"].items()},
                result={"digest": preview["digest"]})


def _commit_job_run(institution: Institution, job: Job, roster: RosterImport) -> None:
    job_mark_running(job, stage="reading the roster again", total=2)
    stale = False
    try:
        with transaction.atomic():
            locked = RosterImport.objects.for_institution(institution).select_for_update().get(pk=roster.pk)
            if locked.status != RosterImportStatus.COMMITTING or locked.commit_job_id != job.pk:
                job_fail(job, error=f"This roster import is {locked.get_status_display().lower()}; "
                                    "nothing was imported.")
                return
            data = _read_stored(locked)
            plan, errors = roster_plan(institution=institution, data=data)
            if errors:
                raise RosterInvalid(errors)
            stale = plan.digest() != locked.preview.get("digest")
            if stale:
                # The administrator reviews this one next: it waits for confirmation again.
                locked.preview, locked.status = plan.summary(data), RosterImportStatus.PREVIEWED
                locked.save(update_fields=["preview", "status", "updated_at"])
            else:
                job_progress(job, done=1, stage="importing")
                _apply(institution, data, plan)
                locked.status, locked.committed_by = RosterImportStatus.COMMITTED, job.created_by
                locked.committed_at = timezone.now()
                locked.result = {"counts": locked.preview["counts"], "cascade": plan.cascade,
                                 "skipped": plan.skipped}
                locked.save(update_fields=["status", "committed_by", "committed_at", "result", "updated_at"])
    except (ImportFileError, RosterInvalid) as exc:
        _refused(job, roster, exc)
        return
    if stale:
        job_fail(job, error="The platform's data changed since the preview, so the roster would now do something "
                            "else; nothing was imported. Review the new preview and confirm again.",
                 result={"code": "roster_preview_changed"})
        return
    _remove_files(locked)
    RosterImport.objects.for_institution(institution).filter(pk=roster.pk).update(files=[])
    job_succeed(job, counts={name: sum(c[k] for k in ("create", "update", "delete"))
                             for name, c in locked.result["counts"].items()})


def roster_import_confirm(*, institution: Institution, roster_import: RosterImport,
                          user: AbstractBaseUser | None) -> RosterImport:
    """Queue the commit job for a previewed roster: it re-checks against the data as it is then and
    applies the roster, all or nothing, only if it still does what the preview showed."""
    with transaction.atomic():
        locked = RosterImport.objects.for_institution(institution).select_for_update().get(pk=roster_import.pk)
        if locked.status != RosterImportStatus.PREVIEWED and not roster_import_stopped(locked, step="commit"):
            raise ImportFileError("roster_not_pending", (
                f"This roster import is {locked.get_status_display().lower()}; only one waiting for confirmation "
                "can be imported. Upload the files again for a new preview."))
        locked.status = RosterImportStatus.COMMITTING
        locked.commit_job = _queue(locked, step="commit", user=user)
        locked.save(update_fields=["status", "commit_job", "updated_at"])
    return locked


def roster_import_stopped(roster: RosterImport, *, step: str | None = None) -> bool:
    """Its job stopped without finishing the step (cancelled, or given up after its worker died):
    nothing was imported (a commit is one transaction); it can be discarded, a commit confirmed again."""
    job = {"preview": roster.preview_job, "commit": roster.commit_job}
    status = {"preview": RosterImportStatus.CHECKING, "commit": RosterImportStatus.COMMITTING}
    return any(roster.status == status[name] and job[name] is not None and job[name].is_finished
               for name in ([step] if step else ["preview", "commit"]))


def roster_import_discard(*, institution: Institution, roster_import: RosterImport) -> RosterImport:
    with transaction.atomic():
        locked = RosterImport.objects.for_institution(institution).select_for_update().get(pk=roster_import.pk)
        if locked.status == RosterImportStatus.PREVIEWED or roster_import_stopped(locked):
            _remove_files(locked)
            locked.status, locked.files = RosterImportStatus.DISCARDED, []
            locked.save(update_fields=["status", "files", "updated_at"])
    return locked


def _apply(institution: Institution, data: RosterData, plan: RosterPlan) -> None:
    for kind in reversed(KINDS):
        ids = list(plan.kinds[kind.name].delete.values())
        if ids:
            kind.model.objects.for_institution(institution).filter(id__in=ids).delete()
    ids: dict[str, dict[str, int]] = {"students": plan.student_ids}
    for kind in KINDS:
        ids[kind.name] = _apply_kind(institution, kind, getattr(data, kind.name), plan.kinds[kind.name], ids)
        if kind.name == "sections":
            _apply_terms(institution, data, plan.kinds["sections"], ids)


def _values(kind: _Kind, row: dict, ids: dict) -> dict:
    values = {name: row[name] for name in kind.fields}
    for name, (target, _) in kind.links.items():
        values[f"{name}_id"] = ids[target][row[name]]
    return values


def _apply_kind(institution, kind: _Kind, rows: dict, plan: _KindPlan, ids: dict) -> dict[str, int]:
    known = {sid: pk for sid, pk in plan.ids.items() if sid not in plan.delete}
    manager = kind.model.objects.for_institution(institution)
    created = manager.bulk_create(
        [kind.model(institution=institution, source_id=sid, **_values(kind, rows[sid], ids)) for sid in plan.create],
        batch_size=_BATCH)
    known.update({row.source_id: row.pk for row in created})
    if plan.update:
        changed = {name for changes in plan.update.values() for name in changes if name != "terms"}
        columns = sorted(changed)
        objects = []
        for sid in plan.update:
            obj = kind.model(pk=known[sid], institution=institution, source_id=sid, **_values(kind, rows[sid], ids))
            obj.updated_at = timezone.now()
            objects.append(obj)
        if columns:
            manager.bulk_update(objects, [*columns, "updated_at"], batch_size=_BATCH)
    return known


def _apply_terms(institution, data: RosterData, plan: _KindPlan, ids: dict) -> None:
    changed = list(plan.create) + [sid for sid, changes in plan.update.items() if "terms" in changes]
    if not changed:
        return
    section_ids = [ids["sections"][sid] for sid in changed]
    links = SectionTerm.objects.for_institution(institution)
    links.filter(section_id__in=section_ids).delete()
    links.bulk_create([SectionTerm(institution=institution, section_id=ids["sections"][sid],
                                   term_id=ids["sessions"][term])
                       for sid in changed for term in data.sections[sid]["terms"]], batch_size=_BATCH)
