"""Writes for interventions, flags, intervention types and caseload assignment.

Every function takes the institution explicitly and resolves ids from input inside it, so a
student, type or advisor of another institution is "not found", never silently linked.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone

from institutions.access import access_member_user, is_possible_id
from institutions.models import Institution, Job, Membership
from predictions.selectors import latest_predictions
from students.models import ChangeSource, Student, StudentChange

from .models import (
    DEFAULT_INTERVENTION_TYPES,
    Flag,
    FlagSource,
    Intervention,
    InterventionOutcome,
    InterventionStatus,
    InterventionType,
    RiskSnapshot,
    StudentAccessGrant,
)


class InterventionRuleError(ValueError):
    """Input that breaks a rule of this app; ``errors`` maps a field to the reasons."""

    def __init__(self, errors: Mapping[str, str | list[str]]):
        self.errors = {key: [value] if isinstance(value, str) else list(value) for key, value in errors.items()}
        super().__init__("; ".join(f"{key}: {' '.join(value)}" for key, value in self.errors.items()))


# --- intervention types ---------------------------------------------------------------------

def intervention_type_create_defaults(*, institution: Institution) -> None:
    """Give a new institution the default types (idempotent: an institution with any type is left alone).

    Runs when the institution is created (see :mod:`interventions.new_institution`); the data
    migration 0004 did the same once for the institutions that existed before."""
    types = InterventionType.objects.for_institution(institution)
    if types.exists():
        return
    types.bulk_create(
        [
            InterventionType(institution=institution, key=key, label=label, position=position)
            for position, (key, label) in enumerate(DEFAULT_INTERVENTION_TYPES)
        ],
        ignore_conflicts=True,
    )


def intervention_type_save(
    *, institution: Institution, intervention_type: InterventionType | None, data: Mapping[str, Any]
) -> InterventionType:
    types = InterventionType.objects.for_institution(institution)
    key = data.get("key", intervention_type.key if intervention_type else "")
    clash = types.filter(key=key)
    if intervention_type is not None:
        clash = clash.exclude(pk=intervention_type.pk)
    if clash.exists():
        raise InterventionRuleError({"key": "an intervention type with this key already exists"})
    if intervention_type is None:
        intervention_type = InterventionType(institution=institution)
    for field in ("key", "label", "description", "is_active", "position"):
        if field in data:
            setattr(intervention_type, field, data[field])
    intervention_type.save()
    return intervention_type


# --- interventions --------------------------------------------------------------------------

def _resolve_student(institution: Institution, student: Student | int) -> Student:
    pk = student.pk if isinstance(student, Student) else student
    found = Student.objects.for_institution(institution).filter(pk=pk).first()
    if found is None:
        raise Http404("Not found.")
    return found


def _resolve_type(institution: Institution, intervention_type: InterventionType | int) -> InterventionType:
    pk = intervention_type.pk if isinstance(intervention_type, InterventionType) else intervention_type
    found = InterventionType.objects.for_institution(institution).filter(pk=pk).first()
    if found is None:
        raise InterventionRuleError({"intervention_type": "no such intervention type in this institution"})
    return found


def _check_dates(date: datetime.date | None, follow_up_date: datetime.date | None) -> None:
    if date is None:
        raise InterventionRuleError({"date": "is required"})
    if date > timezone.localdate() + datetime.timedelta(days=1):
        raise InterventionRuleError({"date": "cannot be in the future; log an intervention once it happened"})
    if follow_up_date is not None and follow_up_date < date:
        raise InterventionRuleError({"follow_up_date": "must not be before the intervention's date"})


@transaction.atomic
def intervention_create(
    *,
    institution: Institution,
    student: Student | int,
    intervention_type: InterventionType | int,
    date: datetime.date,
    author: AbstractBaseUser,
    notes: str = "",
    confidential: bool = False,
    follow_up_date: datetime.date | None = None,
) -> Intervention:
    student = _resolve_student(institution, student)
    intervention_type = _resolve_type(institution, intervention_type)
    if not intervention_type.is_active:
        raise InterventionRuleError({"intervention_type": "this type is no longer offered"})
    _check_dates(date, follow_up_date)
    return Intervention.objects.for_institution(institution).create(
        student=student, intervention_type=intervention_type, date=date, notes=notes.strip(),
        confidential=confidential, follow_up_date=follow_up_date, author=author,
    )


def intervention_can_edit(
    *, intervention: Intervention, user: AbstractBaseUser, membership: Membership | None
) -> bool:
    """Authors edit their own; administrators edit any (confidential ones included)."""
    if membership is not None and membership.can("view_confidential_notes"):
        return True
    return intervention.author_id is not None and intervention.author_id == user.pk


@transaction.atomic
def intervention_update(
    *,
    institution: Institution,
    intervention: Intervention,
    data: Mapping[str, Any],
    user: AbstractBaseUser,
    membership: Membership | None,
) -> Intervention:
    if intervention.institution_id != institution.pk:
        raise Http404("Not found.")
    if not intervention_can_edit(intervention=intervention, user=user, membership=membership):
        raise InterventionRuleError({"non_field_errors": "only the author or an administrator can edit this"})
    if intervention.status == InterventionStatus.CLOSED and set(data) - {"outcome", "outcome_notes"}:
        raise InterventionRuleError({"status": "a closed intervention can only have its outcome corrected"})
    if "intervention_type" in data:
        intervention.intervention_type = _resolve_type(institution, data["intervention_type"])
    for field in ("date", "notes", "confidential", "follow_up_date", "outcome", "outcome_notes"):
        if field in data:
            setattr(intervention, field, data[field].strip() if isinstance(data[field], str) else data[field])
    _check_dates(intervention.date, intervention.follow_up_date)
    if intervention.outcome and intervention.outcome not in InterventionOutcome.values:
        raise InterventionRuleError({"outcome": "not a known outcome"})
    intervention.save()
    return intervention


@transaction.atomic
def intervention_close(
    *,
    institution: Institution,
    intervention: Intervention,
    outcome: str,
    user: AbstractBaseUser,
    membership: Membership | None,
    outcome_notes: str = "",
) -> Intervention:
    if intervention.institution_id != institution.pk:
        raise Http404("Not found.")
    if not intervention_can_edit(intervention=intervention, user=user, membership=membership):
        raise InterventionRuleError({"non_field_errors": "only the author or an administrator can close this"})
    if intervention.status == InterventionStatus.CLOSED:
        raise InterventionRuleError({"status": "this intervention is already closed"})
    if outcome not in InterventionOutcome.values:
        raise InterventionRuleError({"outcome": "choose how it ended"})
    intervention.status = InterventionStatus.CLOSED
    intervention.outcome = outcome
    intervention.outcome_notes = outcome_notes.strip()
    intervention.closed_at = timezone.now()
    intervention.save()
    return intervention


# --- flags ----------------------------------------------------------------------------------

def flag_raise(*, institution: Institution, student: Student | int, reason: str, raised_by: AbstractBaseUser,
               assigned_to: int | str | None = None) -> Flag:
    """A person flags a student for attention; the reason is required. ``assigned_to`` (a user id)
    routes the flag to a member who works caseloads: while it is open, they see the student even
    under need-to-know access."""
    reason = (reason or "").strip()
    if not reason:
        raise InterventionRuleError({"reason": "say why this student needs attention"})
    student = _resolve_student(institution, student)
    assignee = _caseload_member(institution, assigned_to, field="assigned_to")
    return Flag.objects.for_institution(institution).create(
        student=student, source=FlagSource.MANUAL, reason=reason, raised_by=raised_by, assigned_to=assignee
    )


def _caseload_member(institution: Institution, user_id: int | str | None, *, field: str):
    """The member with ``user_id`` who works caseloads (advisors, administrators), None for no id,
    else a rule error naming ``field``."""
    if user_id in (None, ""):
        return None
    try:
        user = access_member_user(institution=institution, user_id=user_id)
    except Http404:
        raise InterventionRuleError({field: "no such advisor in this institution"}) from None
    if not Membership.objects.for_institution(institution).get(user=user).can("edit_interventions"):
        raise InterventionRuleError({field: "this member's role cannot work a caseload"})
    return user


def access_grant_create(*, institution: Institution, student: Student | int, user_id: int | str, reason: str = "",
                        expires_at: datetime.datetime | None = None, granted_by: AbstractBaseUser,
                        ) -> StudentAccessGrant:
    """An administrator lets an advisor see one student under need-to-know access."""
    student = _resolve_student(institution, student)
    user = _caseload_member(institution, user_id, field="user")
    if user is None:
        raise InterventionRuleError({"user": "choose who may see the student"})
    if expires_at is not None and expires_at <= timezone.now():
        raise InterventionRuleError({"expires_at": "the end must be in the future"})
    return StudentAccessGrant.objects.for_institution(institution).create(
        student=student, user=user, reason=(reason or "").strip(), expires_at=expires_at, granted_by=granted_by,
    )


def access_grant_revoke(*, institution: Institution, grant: StudentAccessGrant,
                        revoked_by: AbstractBaseUser) -> StudentAccessGrant:
    if grant.institution_id != institution.pk:
        raise Http404("Not found.")
    if grant.revoked_at is not None:
        raise InterventionRuleError({"non_field_errors": "this grant is already revoked"})
    grant.revoked_at = timezone.now()
    grant.revoked_by = revoked_by
    grant.save(update_fields=["revoked_at", "revoked_by"])
    return grant


def flag_resolve(*, institution: Institution, flag: Flag, resolution: str, resolved_by: AbstractBaseUser) -> Flag:
    if flag.institution_id != institution.pk:
        raise Http404("Not found.")
    resolution = (resolution or "").strip()
    if flag.resolved_at is not None:
        raise InterventionRuleError({"non_field_errors": "this flag is already resolved"})
    if not resolution:
        raise InterventionRuleError({"resolution": "say how it was resolved"})
    flag.resolved_at = timezone.now()
    flag.resolved_by = resolved_by
    flag.resolution = resolution
    flag.save()
    return flag


def flag_review_model_flag(
    *, institution: Institution, student: Student | int, resolution: str, reviewed_by: AbstractBaseUser
) -> Flag:
    """Record that staff dealt with the model's flag on a student, with a reason.

    The student leaves the flagged list until the model scores them again with changed inputs
    (a newer latest prediction): then the model's flag stands anew and someone should look again.
    """
    student = _resolve_student(institution, student)
    resolution = (resolution or "").strip()
    latest = latest_predictions(institution=institution).filter(student=student, flagged=True).first()
    if latest is None:
        raise InterventionRuleError({"non_field_errors": "the model does not flag this student"})
    if not resolution:
        raise InterventionRuleError({"resolution": "say what was done about it"})
    now = timezone.now()
    return Flag.objects.for_institution(institution).create(
        student=student, source=FlagSource.MODEL, raised_by=None, resolved_at=now, resolved_by=reviewed_by,
        reason=f"Flagged by the model: risk {100 * latest.risk:.1f}%, rank {latest.rank}", resolution=resolution,
    )


# --- caseloads ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseloadAssignment:
    advisor_id: int | None
    assigned: int
    unchanged: int


@transaction.atomic
def caseload_assign(
    *,
    institution: Institution,
    student_ids: Iterable[int | str],
    advisor: AbstractBaseUser | int | None,
    actor: AbstractBaseUser | None,
    source: str = ChangeSource.WEB,
) -> CaseloadAssignment:
    """Assign students to an advisor (``None`` unassigns) in one statement, recording each change.

    The advisor must be a member of the institution whose role works caseloads or an
    administrator; every student id must belong to the institution. Any bad id writes nothing.
    """
    try:
        ids = sorted({int(pk) for pk in student_ids})
    except (TypeError, ValueError):
        raise InterventionRuleError({"students": "student ids must be integers"}) from None
    if not ids:
        raise InterventionRuleError({"students": "choose at least one student"})
    advisor_user = None if advisor is None else _caseload_member(
        institution, getattr(advisor, "pk", advisor), field="advisor"
    )
    students = Student.objects.for_institution(institution)
    possible = [pk for pk in ids if is_possible_id(pk)]
    current = dict(students.filter(pk__in=possible).values_list("pk", "advisor_id"))
    missing = [pk for pk in ids if pk not in current]
    if missing:
        shown = ", ".join(str(pk) for pk in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise InterventionRuleError({"students": f"not found in this institution: {shown}"})
    new_id = advisor_user.pk if advisor_user else None
    changing = [pk for pk, old in current.items() if old != new_id]
    if changing:
        students.filter(pk__in=changing).update(advisor_id=new_id, updated_at=timezone.now())
        StudentChange.objects.for_institution(institution).bulk_create(
            [
                StudentChange(institution=institution, student_id=pk, source=source, actor=actor,
                              changes={"advisor": [current[pk], new_id]})
                for pk in changing
            ],
            batch_size=1000,
        )
    return CaseloadAssignment(advisor_id=new_id, assigned=len(changing), unchanged=len(ids) - len(changing))


# --- risk snapshots -------------------------------------------------------------------------

def risk_snapshot_record(*, institution: Institution, job: Job | None) -> RiskSnapshot | None:
    """Record the flagged workload as it stands after a scoring run (idempotent per run).

    Called when a rescore job succeeds. Pages only read snapshots: before the first one the
    dashboard says that "flagged over time" starts with the next run.
    """
    snapshots = RiskSnapshot.objects.for_institution(institution)
    if job is not None and snapshots.filter(job=job).exists():
        return None
    latest = latest_predictions(institution=institution).order_by()
    counts = latest.aggregate(
        scored=Count("id"), flagged=Count("id", filter=Q(flagged=True)), high=Count("id", filter=Q(band="high")),
        medium=Count("id", filter=Q(band="medium")), low=Count("id", filter=Q(band="low")),
    )
    flagged_ids = sorted(latest.filter(flagged=True).values_list("student_id", flat=True))
    taken_at = (job.finished_at if job is not None and job.finished_at else None) or timezone.now()
    created = snapshots.bulk_create(
        [RiskSnapshot(institution=institution, job=job, taken_at=taken_at, flagged_student_ids=flagged_ids,
                      **{key: value or 0 for key, value in counts.items()})],
        ignore_conflicts=True,
    )
    return created[0]
