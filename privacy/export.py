"""Subject access: everything the institution holds about one student, in one document.

The same document is downloaded as JSON and shown as a page. Sections: the record with its
current feature values; the data-change history; every stored prediction with its explanation
and the latest standing; interventions (all notes, confidential ones included: the export is
for the student); flags; LMS activity events; import reports and change lists that name the
student; alerts with their history (instructors' comments and staff notes included); webhook
deliveries about the student; the access log (who read the record); and any
other table linked to the student (``other_linked_records``), so a table added later is
exported before anyone remembers to add a section for it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import batching
from audit.models import AccessEntry
from institutions.models import Institution, Job, JobKind, WebhookDelivery
from interventions.models import Alert, AlertEvent, Flag, Intervention
from predictions.models import LatestPrediction, Prediction
from students.importing.uploads import import_changes_path
from students.models import ActivityEvent, Student, StudentChange

from .row_kinds import row_kind_label

EXPORT_FORMAT = "dropout-platform subject access export, version 1"
# Relations exported in their own section (the rest go to other_linked_records).
SECTIONED = {"students.StudentChange", "students.ActivityEvent", "predictions.Prediction",
             "predictions.LatestPrediction", "interventions.Intervention", "interventions.Flag",
             "interventions.Alert"}


def _user(user) -> str | None:
    return getattr(user, "username", None)


def _iso(value):
    return value.isoformat() if value is not None else None


def student_export(*, institution: Institution, student: Student, exported_by=None) -> dict:
    """The whole document (dates as ISO text); the student must be of ``institution``."""
    if student.institution_id != institution.pk:
        raise ValueError("student belongs to another institution")
    return {
        "format": EXPORT_FORMAT,
        "institution": {"slug": institution.slug, "name": institution.name},
        "exported_at": timezone.now().isoformat(),
        "exported_by": _user(exported_by),
        "student": _record(student),
        "data_changes": list(_changes(institution, student)),
        "predictions": list(_predictions(institution, student)),
        "latest_prediction": _latest(institution, student),
        "interventions": list(_interventions(institution, student)),
        "flags": list(_flags(institution, student)),
        "alerts": _alerts(institution, student),
        "activity_events": list(_activity(institution, student)),
        "import_history": list(_imports(institution, student)),
        "webhook_deliveries": list(_deliveries(institution, student)),
        "access_log": list(_access_log(institution, student)),
        "other_linked_records": _other_linked(student),
    }


def _record(student: Student) -> dict:
    return {
        "id": student.pk, "external_id": student.external_id, "name": student.name, "email": student.email,
        "program": student.program, "cohort": student.cohort, "status": student.status, "outcome": student.outcome,
        "outcome_date": _iso(student.outcome_date), "features": student.features,
        "advisor": _user(student.advisor), "created_at": _iso(student.created_at),
        "updated_at": _iso(student.updated_at),
    }


def _changes(institution, student) -> Iterator[dict]:
    for change in StudentChange.objects.for_institution(institution).filter(student=student).select_related(
            "actor").order_by("changed_at", "id"):
        yield {"changed_at": _iso(change.changed_at), "source": change.source, "by": _user(change.actor),
               "job": change.job_id, "created": change.created, "changes": change.changes}


def _predictions(institution, student) -> Iterator[dict]:
    for p in Prediction.objects.for_institution(institution).filter(student=student).select_related(
            "model_version").order_by("created_at", "id"):
        yield {"scored_at": _iso(p.created_at), "risk": p.risk, "band": p.band, "model_version": p.model_version.number,
               "job": p.job_id, "base_value": p.base_value, "explanation": p.factors}


def _latest(institution, student) -> dict | None:
    latest = LatestPrediction.objects.for_institution(institution).filter(student=student).first()
    if latest is None:
        return None
    return {"risk": latest.risk, "band": latest.band, "rank": latest.rank, "percentile": latest.percentile,
            "flagged": latest.flagged, "scored_at": _iso(latest.scored_at)}


def _interventions(institution, student) -> Iterator[dict]:
    for i in Intervention.objects.for_institution(institution).filter(student=student).select_related(
            "intervention_type", "author").order_by("date", "id"):
        yield {"date": _iso(i.date), "type": i.intervention_type.label, "notes": i.notes,
               "confidential": i.confidential, "follow_up_date": _iso(i.follow_up_date), "status": i.status,
               "outcome": i.outcome, "outcome_notes": i.outcome_notes, "closed_at": _iso(i.closed_at),
               "author": _user(i.author), "created_at": _iso(i.created_at)}


def _flags(institution, student) -> Iterator[dict]:
    for f in Flag.objects.for_institution(institution).filter(student=student).select_related(
            "raised_by", "resolved_by").order_by("raised_at", "id"):
        yield {"source": f.source, "reason": f.reason, "raised_by": _user(f.raised_by), "raised_at": _iso(f.raised_at),
               "resolved_at": _iso(f.resolved_at), "resolved_by": _user(f.resolved_by), "resolution": f.resolution}


def _alerts(institution, student) -> list[dict]:
    """Each alert with its history (two queries, however many alerts)."""
    alerts = list(Alert.objects.for_institution(institution).filter(student=student).select_related(
        "concern_type", "raised_by_user", "raised_by_instructor", "section", "assigned_user", "assigned_office",
        "closed_by").order_by("created_at", "id"))
    events: dict[int, list[dict]] = {alert.pk: [] for alert in alerts}
    for e in AlertEvent.objects.for_institution(institution).filter(alert__in=alerts).select_related(
            "actor", "to_user", "to_office").order_by("at", "id"):
        events[e.alert_id].append({"at": _iso(e.at), "kind": e.kind, "by": _user(e.actor), "note": e.note,
                                   "to_user": _user(e.to_user),
                                   "to_office": e.to_office.name if e.to_office else None})
    return [{"raised_at": _iso(a.created_at), "concern": a.concern_type.label, "source": a.source,
             "comment": a.comment, "raised_by_user": _user(a.raised_by_user),
             "raised_by_instructor": str(a.raised_by_instructor) if a.raised_by_instructor else None,
             "section": str(a.section) if a.section else None, "status": a.status,
             "assigned_user": _user(a.assigned_user),
             "assigned_office": a.assigned_office.name if a.assigned_office else None, "outcome": a.outcome,
             "outcome_notes": a.outcome_notes, "closed_at": _iso(a.closed_at), "closed_by": _user(a.closed_by),
             "raiser_told_at": _iso(a.raiser_told_at), "history": events[a.pk]} for a in alerts]


def _activity(institution, student) -> Iterator[dict]:
    rows = ActivityEvent.objects.for_institution(institution).filter(student=student).order_by("occurred_at", "id")
    for event in rows.iterator(chunk_size=2000):
        yield {"occurred_at": _iso(event.occurred_at), "kind": event.kind, "course": event.course,
               "count": event.count, "event_id": event.event_id}


def _imports(institution, student) -> Iterator[dict]:
    """Import jobs whose report or change list names the student, with those lines."""
    for job in Job.objects.for_institution(institution).filter(kind=JobKind.IMPORT).order_by("created_at", "id"):
        lines = _change_file_lines(import_changes_path(job), student.external_id)
        report = [line for line in (job.result or {}).get("changes", []) or []
                  if isinstance(line, dict) and line.get("external_id") == student.external_id]
        if lines or report:
            yield {"job": job.pk, "created_at": _iso(job.created_at), "finished_at": _iso(job.finished_at),
                   "status": job.status, "report_lines": report, "change_list_lines": lines}


def _change_file_lines(path, external_id: str) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle) if (row.get("external_id") or "").lstrip("'") == external_id]


def _deliveries(institution, student) -> Iterator[dict]:
    rows = WebhookDelivery.objects.for_institution(institution).filter(
        Q(payload__student_id=student.pk)).select_related("endpoint").order_by("created_at", "id")
    for d in rows:
        yield {"event": d.event, "endpoint": d.endpoint.url, "status": d.status, "created_at": _iso(d.created_at),
               "delivered_at": _iso(d.delivered_at), "payload": d.payload}


def _access_log(institution, student) -> Iterator[dict]:
    batching.flush()  # this process's latest reads too
    for entry in AccessEntry.objects.for_institution(institution).filter(student_id=student.pk).order_by(
            "created_at", "id"):
        yield {"at": _iso(entry.created_at), "action": entry.get_action_display(), "by": entry.actor_name,
               "api_key": entry.api_key_id, "from_address": entry.ip_address}


def _other_linked(student: Student) -> dict[str, list[dict]]:
    """Rows of every other table with a foreign key to the student (e.g. need-to-know grants)."""
    found = {}
    # Hidden relations too (related_name="+"): most tenant tables point at the student that way.
    relations = [f for f in Student._meta.get_fields(include_hidden=True)
                 if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)]
    for relation in relations:
        model = relation.related_model
        if model._meta.label in SECTIONED:
            continue
        rows = model._base_manager.filter(**{relation.field.name: student}).order_by("pk")
        listed = [{key: _plain(value) for key, value in model_to_dict(row).items()} for row in rows]
        if listed:
            found[str(model._meta.verbose_name_plural)] = listed
    return found


def _plain(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        return value
    return str(value)


def export_summary(document: dict) -> list[tuple[str, int]]:
    """(section, rows) for the page's contents."""
    sections = [(_("Data changes"), "data_changes"), (_("Predictions"), "predictions"),
                (_("Interventions"), "interventions"), (_("Flags"), "flags"), (_("Alerts"), "alerts"),
                (_("Activity events"), "activity_events"), (_("Import history"), "import_history"),
                (_("Webhook deliveries"), "webhook_deliveries"), (_("Access log"), "access_log")]
    summary = [(label, len(document[key])) for label, key in sections]
    summary += [(row_kind_label(name).capitalize(), len(rows))
                for name, rows in document["other_linked_records"].items()]
    return summary
