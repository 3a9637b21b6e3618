"""Erasing students: the student and every row linked to them go; reports that name them are cleaned.

One plan serves the confirmation page, the API's dry run and the erasure itself
(:func:`erasure_plan`), so what a person confirms is what is done:

- **deleted**: the student and everything Django cascades from them (predictions and the latest
  one, interventions, flags, activity events, the data-change history, caseload grants, and any
  table added later with a foreign key to the student), counted per kind by Django's collector;
- **cleaned** (anonymised): text elsewhere that names them, i.e. the student's external id, name
  or email in job reports (import reports list changed rows and rejected cells), webhook
  payloads and responses, import previews, other students' notes; a list entry (a report line,
  a rejected cell) naming them is removed, and any other mention is replaced by ``[erased]``;
  webhook deliveries about the student are deleted; import change lists (CSV files) lose their
  lines; risk snapshots forget the student's id; the staff admin's log of the student goes;
  access log entries are unlinked (``audit.services.redact_student``);
- **kept**: aggregates stored as numbers (model versions' metrics and training counts, risk
  snapshots' counts, jobs' counts) and an :class:`~privacy.models.ErasureRecord` per student,
  with who, when, how and a random id, and no personal data.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, router, transaction
from django.db.models import Q, TextField
from django.db.models.deletion import Collector
from django.db.models.functions import Cast

from audit import services as audit_services
from audit.models import AccessEntry
from institutions.csv_export import formula_safe_writer
from institutions.models import Institution, Job, JobKind, WebhookDelivery
from institutions.scoping import TenantModel
from interventions.models import RiskSnapshot
from students.importing.changes import CHANGES_CSV_HEADER
from students.importing.uploads import import_changes_path
from students.models import Student

from .models import ErasureRecord, ErasureVia

REDACTED = "[erased]"
ACCESS_ENTRIES = "access log entries (unlinked from the student)"
# Tenant tables whose text never names another student: the student's own rows there are deleted
# with them; scanning these (often the largest tables) for names would only cost time.
# audit.AccessEntry holds ids, no names, and is append-only: redact_student unlinks it.
NOT_SCANNED = frozenset({
    "students.Student", "students.StudentChange", "students.ActivityEvent", "students.FeatureDefinition",
    "students.FeatureDefinitionChange", "predictions.Prediction", "predictions.LatestPrediction",
    "predictions.ModelVersion", "audit.AccessEntry", "privacy.ErasureRecord", "privacy.RetentionPolicy",
    "institutions.ApiKey", "institutions.Membership",
})
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


class ErasureConfirmationMismatch(ValueError):
    """The typed external id is not the student's."""


# Shorter than this, an external id or a name is looked for only where a field holds an external
# id (``"external_id": "7"``), never inside free text, where "7" or "Li" would blank other words.
MIN_TEXT_MATCH = 4
ID_KEYS = frozenset({"external_id", "student_external_id", "student__external_id"})


@dataclass
class _Needles:
    """What names the students being erased: their ids, external ids, names and emails."""

    student_ids: list[int]
    external_ids: set[str]
    python: re.Pattern | None
    postgres: str

    @classmethod
    def of(cls, students: Sequence[Student]) -> _Needles:
        words = {text.strip() for student in students for text in (student.external_id, student.name, student.email)
                 if text and text.strip()}
        in_text = sorted((word for word in words if len(word) >= MIN_TEXT_MATCH), key=len, reverse=True)
        python = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(word) for word in in_text) + r")(?!\w)",
                            re.IGNORECASE) if in_text else None
        # PostgreSQL's regular expressions (ARE): escape every character that is not a letter or digit.
        postgres = "|".join(re.sub(r"([^\w\s])", r"\\\1", word) for word in sorted(words, key=len, reverse=True))
        return cls([s.pk for s in students], {s.external_id for s in students}, python, postgres)

    def names(self, text: str) -> bool:
        return self.python is not None and bool(self.python.search(text))

    def sub(self, text: str) -> str:
        return self.python.sub(REDACTED, text) if self.python is not None else text

    def is_id(self, key, value) -> bool:
        return key in ID_KEYS and isinstance(value, str) and value.strip().lstrip("'") in self.external_ids


def _scrub(value, needles: _Needles):
    """``value`` (JSON-like) without what names the students: list entries naming them removed,
    other mentions replaced by ``[erased]``."""
    if isinstance(value, str):
        return needles.sub(value)
    if isinstance(value, list):
        return [_scrub(item, needles) for item in value if not _entry_names(item, needles)]
    if isinstance(value, dict):
        return {_scrub(key, needles): REDACTED if needles.is_id(key, item) else _scrub(item, needles)
                for key, item in value.items()}
    return value


def _entry_names(item, needles: _Needles) -> bool:
    """A report entry about one of the students (a changed row, a rejected cell with their name)."""
    return isinstance(item, dict) and any(
        needles.is_id(key, value) or (isinstance(value, str) and needles.names(value)) for key, value in item.items()
    )


def _scanned_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models()
            if issubclass(model, TenantModel) and model._meta.label not in NOT_SCANNED
            and not model._meta.proxy and _text_fields(model)]


def _text_fields(model) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS) and not f.primary_key]


@dataclass
class _Cleaning:
    model: type[models.Model]
    pk: int
    values: dict


@dataclass
class ErasurePlan:
    """What erasing ``students`` deletes and cleans; ``deleted``/``cleaned``: rows per kind."""

    students: list[Student]
    deleted: Counter = field(default_factory=Counter)
    cleaned: Counter = field(default_factory=Counter)
    collector: Collector | None = None
    cleanings: list[_Cleaning] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)
    snapshots: list[RiskSnapshot] = field(default_factory=list)
    change_files: list[Path] = field(default_factory=list)
    admin_log: list[int] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return {"deleted": dict(sorted(self.deleted.items())), "cleaned": dict(sorted(self.cleaned.items()))}


def _label(model) -> str:
    return str(model._meta.verbose_name_plural)


def erasure_plan(*, institution: Institution, students: Sequence[Student]) -> ErasurePlan:
    """What erasing ``students`` (of ``institution``) would delete and clean; writes nothing."""
    students = [s for s in students if s.institution_id == institution.pk]
    plan = ErasurePlan(students=students)
    if not students:
        return plan
    needles = _Needles.of(students)
    collector = Collector(using=router.db_for_write(Student))
    collector.collect(students)
    plan.collector = collector
    going: dict[type, set] = {}  # rows deleted anyway: not counted as cleaned too
    for model, instances in collector.data.items():
        plan.deleted[_label(model)] += len(instances)
        going.setdefault(model, set()).update(instance.pk for instance in instances)
    for queryset in collector.fast_deletes:
        pks = set(queryset.values_list("pk", flat=True))
        if pks:
            plan.deleted[_label(queryset.model)] += len(pks)
            going.setdefault(queryset.model, set()).update(pks)

    deliveries = WebhookDelivery.objects.for_institution(institution).filter(
        payload__student_id__in=needles.student_ids)
    plan.deliveries = list(deliveries.values_list("pk", flat=True))
    if plan.deliveries:
        plan.deleted["webhook deliveries about the student"] += len(plan.deliveries)
    going.setdefault(WebhookDelivery, set()).update(plan.deliveries)
    for model in _scanned_models():
        _plan_cleaning(plan, institution, model, needles, skip=going.get(model, set()))

    snapshot_has = Q()
    for student_id in needles.student_ids:
        snapshot_has |= Q(flagged_student_ids__contains=[student_id])
    plan.snapshots = list(RiskSnapshot.objects.for_institution(institution).filter(snapshot_has))
    if plan.snapshots:
        plan.cleaned["risk snapshots (the student's id)"] += len(plan.snapshots)
    plan.change_files = [path for path in _change_files(institution) if _file_names(path, needles)]
    if plan.change_files:
        plan.cleaned["import change lists (CSV files)"] += len(plan.change_files)
    plan.admin_log = list(LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Student), object_id__in=[str(i) for i in needles.student_ids],
    ).values_list("pk", flat=True))
    if plan.admin_log:
        plan.deleted["staff admin log entries"] += len(plan.admin_log)
    accessed = AccessEntry.objects.for_institution(institution).filter(student_id__in=needles.student_ids).count()
    if accessed:
        plan.cleaned[ACCESS_ENTRIES] += accessed
    return plan


def _plan_cleaning(plan: ErasurePlan, institution, model, needles: _Needles, *, skip: set[int]) -> None:
    fields = _text_fields(model)
    mentions = Q()
    for f in fields:
        mentions |= Q(**{f"_erasure_text_{f.attname}__iregex": needles.postgres})
    rows = model.objects.for_institution(institution).annotate(
        **{f"_erasure_text_{f.attname}": Cast(f.attname, TextField()) for f in fields}
    ).filter(mentions).exclude(pk__in=skip).values("pk", *[f.attname for f in fields])
    for row in rows.iterator(chunk_size=500):
        values = {}
        for f in fields:
            old = row[f.attname]
            new = _scrub(old, needles)
            if isinstance(f, models.CharField) and isinstance(new, str) and f.max_length:
                new = new[:f.max_length]
            if new != old:
                values[f.attname] = new
        if values:
            plan.cleanings.append(_Cleaning(model, row["pk"], values))
            plan.cleaned[_label(model)] += 1


def _change_files(institution: Institution) -> Iterable[Path]:
    for job in Job.objects.for_institution(institution).filter(kind=JobKind.IMPORT).only("pk", "institution_id"):
        path = import_changes_path(job)
        if path.is_file():
            yield path


def _file_names(path: Path, needles: _Needles) -> bool:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        id_column = header.index("external_id") if "external_id" in header else None
        return any((id_column is not None and id_column < len(row) and needles.is_id("external_id", row[id_column]))
                   or any(needles.names(cell) for cell in row) for row in reader)


def _rewrite_change_file(path: Path, needles: _Needles) -> None:
    """Drop the students' lines (and blank other mentions) from an import's change list, in place."""
    partial = path.with_name(path.name + ".partial")
    with path.open(encoding="utf-8", newline="") as source, partial.open("w", encoding="utf-8", newline="") as out:
        reader = csv.reader(source)
        writer = formula_safe_writer(out)
        header = next(reader, CHANGES_CSV_HEADER)
        writer.writerow(header)
        id_column = header.index("external_id") if "external_id" in header else None
        for row in reader:
            if id_column is not None and id_column < len(row) and needles.is_id("external_id", row[id_column]):
                continue
            writer.writerow([needles.sub(cell) for cell in row])
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def student_erase(
    *, institution: Institution, student: Student, confirm_external_id: str, erased_by, via: str = ErasureVia.PAGE,
) -> ErasureRecord:
    """Erase one student after the person typed their external id (exactly); returns the record."""
    if (confirm_external_id or "").strip() != student.external_id:
        raise ErasureConfirmationMismatch(
            "The external id you typed is not this student's; nothing was erased. Type it exactly as shown.")
    record = student_erase_recorded(institution=institution, student=student, erased_by=erased_by, via=via)
    if record is None:
        raise ErasureConfirmationMismatch("This student was erased meanwhile; nothing more to erase.")
    return record


def student_erase_recorded(
    *, institution: Institution, student: Student, via: str, erased_by=None, job: Job | None = None, rule: str = "",
) -> ErasureRecord | None:
    """Erase ``student`` of ``institution`` and leave the record; all or nothing. None: already gone."""
    with transaction.atomic():
        locked = list(Student.objects.for_institution(institution).select_for_update().filter(pk=student.pk))
        if not locked:
            return None
        plan = erasure_plan(institution=institution, students=locked)
        needles = _Needles.of(locked)
        for cleaning in plan.cleanings:
            cleaning.model.objects.for_institution(institution).filter(pk=cleaning.pk).update(**cleaning.values)
        WebhookDelivery.objects.for_institution(institution).filter(pk__in=plan.deliveries).delete()
        for snapshot in plan.snapshots:
            snapshot.flagged_student_ids = [i for i in snapshot.flagged_student_ids if i != student.pk]
            snapshot.save(update_fields=["flagged_student_ids"])
        LogEntry.objects.filter(pk__in=plan.admin_log).delete()
        audit_services.redact_student(institution, student.pk, erased_by=erased_by,
                                      erased_by_name=f"retention job #{job.pk}" if job is not None else "")
        plan.collector.delete()
        # Files last: a failure above rolls everything back and leaves them as they were.
        for path in plan.change_files:
            _rewrite_change_file(path, needles)
        counts = plan.counts
        return ErasureRecord.objects.for_institution(institution).create(
            erased_by=erased_by, erased_by_label=getattr(erased_by, "username", "") or "", via=via, job=job,
            rule=rule[:200], counts=counts,
        )
