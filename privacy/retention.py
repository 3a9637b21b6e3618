"""Retention rules: what the next run would do (the page's preview) and the run itself (a job).

The preview and the run call the same :func:`retention_plan`, so the page shows exactly what a
run started now would do. A run started from the page carries the previewed ids and does only
what was both previewed and still due; the daily run (beat) does what is due when it runs. Every
run is a job whose report lists the erasure ids (never who was erased) and the flags closed;
nothing is erased or closed outside such a job.
"""

from __future__ import annotations

import datetime
import json
import zoneinfo
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from institutions.jobs import JobStopped, job_create, job_dispatch, job_mark_running, job_progress, job_succeed
from institutions.models import Institution, Job, JobKind
from interventions.models import Flag
from students.models import Outcome, Student

from .erasure import student_erase_recorded
from .models import ErasureVia, RetentionPolicy

# Outcomes that mean the student left (graduated or not); "enrolled" students are never erased.
LEFT_OUTCOMES = (Outcome.GRADUATED, Outcome.DROPPED_OUT, Outcome.TRANSFERRED, Outcome.OTHER)
SCHEDULED_TASK = "privacy.tasks.scheduled_retention"
PREVIEW_LISTED = 200  # rows the page lists of each kind; the counts are always whole


class RetentionRuleError(ValueError):
    pass


def retention_policy_get(*, institution: Institution) -> RetentionPolicy:
    """The institution's rules (every rule off until an administrator sets one)."""
    policy = RetentionPolicy.objects.for_institution(institution).first()
    return policy or RetentionPolicy(institution=institution)


def parse_term_end_dates(text: str) -> list[str]:
    """``"01-31, 07-15"`` -> ``["01-31", "07-15"]``; a specific message for anything else."""
    days = []
    for part in (piece.strip() for piece in (text or "").replace(";", ",").split(",")):
        if not part:
            continue
        try:
            datetime.datetime.strptime(f"2000-{part}", "%Y-%m-%d")  # 2000: a leap year, so 02-29 is accepted
        except ValueError:
            raise RetentionRuleError(_("%(day)s is not a day of the year as MM-DD (e.g. 07-15).") % {
                "day": repr(part)}) from None
        if len(part) != 5:
            raise RetentionRuleError(_("%(day)s: write the day as MM-DD with two digits each (e.g. 07-05).") % {
                "day": repr(part)})
        days.append(part)
    return sorted(set(days))


def latest_term_end(term_end_dates: list[str], today: datetime.date) -> datetime.date | None:
    """The most recent term end strictly before ``today`` (a term ends at the end of its last day)."""
    best = None
    for text in term_end_dates:
        month, day = int(text[:2]), int(text[3:])
        for year in (today.year, today.year - 1):
            try:
                candidate = datetime.date(year, month, day)
            except ValueError:  # 02-29 in a year without it: the term ends on the 28th
                candidate = datetime.date(year, month, 28)
            if candidate < today and (best is None or candidate > best):
                best = candidate
                break
    return best


@dataclass
class RetentionPlan:
    today: datetime.date
    erase_cutoff: datetime.date | None = None
    flag_cutoff: datetime.datetime | None = None
    term_end: datetime.date | None = None
    students: list[dict] = field(default_factory=list)
    students_without_date: int = 0
    flags: list[dict] = field(default_factory=list)

    @property
    def student_ids(self) -> list[int]:
        return [row["id"] for row in self.students]

    @property
    def flag_ids(self) -> list[int]:
        return [row["id"] for row in self.flags]

    @property
    def is_empty(self) -> bool:
        return not self.students and not self.flags


def _local_today(institution: Institution) -> datetime.date:
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(institution.timezone)).date()


def _local_midnight(institution: Institution, day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zoneinfo.ZoneInfo(institution.timezone))


def retention_plan(
    *, institution: Institution, policy: RetentionPolicy, today: datetime.date | None = None,
) -> RetentionPlan:
    """What running ``policy`` now would erase and close; reads only."""
    today = today or _local_today(institution)
    plan = RetentionPlan(today=today)
    students = Student.objects.for_institution(institution)
    if policy.erase_after_days:
        plan.erase_cutoff = today - datetime.timedelta(days=policy.erase_after_days)
        left = students.filter(outcome__in=LEFT_OUTCOMES)
        plan.students = list(left.filter(outcome_date__lte=plan.erase_cutoff).order_by("outcome_date", "pk").values(
            "id", "external_id", "name", "outcome", "outcome_date"))
        plan.students_without_date = left.filter(outcome_date__isnull=True).count()
    cutoffs = []
    if policy.close_flags_after_days:
        cutoffs.append(timezone.now() - datetime.timedelta(days=policy.close_flags_after_days))
    plan.term_end = latest_term_end(policy.term_end_dates or [], today)
    if plan.term_end is not None:
        cutoffs.append(_local_midnight(institution, plan.term_end + datetime.timedelta(days=1)))
    if cutoffs:
        plan.flag_cutoff = max(cutoffs)
        erased = set(plan.student_ids)  # their flags go with them
        plan.flags = [row for row in Flag.objects.for_institution(institution).filter(
            resolved_at__isnull=True, raised_at__lt=plan.flag_cutoff,
        ).order_by("raised_at", "pk").values("id", "student_id", "student__external_id", "source", "raised_at")
            if row["student_id"] not in erased]
    return plan


def _rule_text(policy: RetentionPolicy, plan: RetentionPlan) -> str:
    return f"erase {policy.erase_after_days} days after the outcome date (on or before {plan.erase_cutoff})"


def _flag_resolution(policy: RetentionPolicy, plan: RetentionPlan, job: Job) -> str:
    reasons = []
    if policy.close_flags_after_days:
        reasons.append(f"open more than {policy.close_flags_after_days} days")
    if plan.term_end is not None:
        reasons.append(f"raised before the term ended on {plan.term_end:%Y-%m-%d}")
    return f"Closed by the retention rules (job #{job.pk}): {' or '.join(reasons)}."


def retention_run_request(
    *, institution: Institution, created_by=None, expected: RetentionPlan | None = None, triggered_by: str = "user",
) -> tuple[Job, bool]:
    """Queue a run. From the page, ``expected`` is the previewed plan: the run does no more than it."""
    params = {}
    if expected is not None:
        params = {"expected_students": expected.student_ids, "expected_flags": expected.flag_ids}
    job, created = job_create(institution=institution, kind=JobKind.RETENTION, params=params, created_by=created_by,
                              triggered_by=triggered_by, join_active=expected is None)
    if created:
        job_dispatch(job)
    return job, created


def retention_job_run(*, institution: Institution, job: Job) -> None:
    """Run the rules: close the due flags, erase the due students (one erasure record each)."""
    policy = retention_policy_get(institution=institution)
    plan = retention_plan(institution=institution, policy=policy)
    student_ids, flag_ids = plan.student_ids, plan.flag_ids
    skipped = {"students": 0, "flags": 0}
    if "expected_students" in job.params:
        wanted_students, wanted_flags = set(job.params["expected_students"]), set(job.params["expected_flags"])
        skipped = {"students": len(wanted_students - set(student_ids)), "flags": len(wanted_flags - set(flag_ids))}
        student_ids = [i for i in student_ids if i in wanted_students]
        flag_ids = [i for i in flag_ids if i in wanted_flags]
    total = len(student_ids) + (1 if flag_ids else 0)
    job_mark_running(job, total=total, stage="closing flags")
    done = {"erasure_ids": [], "flags_closed": []}

    def report() -> tuple[dict, dict]:
        counts = {"students_erased": len(done["erasure_ids"]), "flags_closed": len(done["flags_closed"])}
        return counts, {
            "rules": retention_rules_summary(policy), "today": plan.today.isoformat(),
            "erase_cutoff": plan.erase_cutoff.isoformat() if plan.erase_cutoff else None,
            "flag_cutoff": plan.flag_cutoff.isoformat() if plan.flag_cutoff else None,
            "term_end": plan.term_end.isoformat() if plan.term_end else None,
            **done, "students_kept_without_outcome_date": plan.students_without_date,
            "previewed_but_no_longer_due": skipped,
        }

    try:
        _retention_apply(institution=institution, job=job, policy=policy, plan=plan, student_ids=student_ids,
                         flag_ids=flag_ids, done=done)
    except JobStopped:
        # Cancelled (or taken over) midway: what was done so far stays on the job's report.
        counts, result = report()
        Job.objects.for_institution(institution).filter(pk=job.pk).update(counts=counts, result=result)
        raise
    counts, result = report()
    job_succeed(job, counts=counts, result=result)


def _retention_apply(*, institution, job, policy, plan, student_ids, flag_ids, done) -> None:
    if flag_ids:
        with transaction.atomic():
            due = Flag.objects.for_institution(institution).select_for_update().filter(
                pk__in=flag_ids, resolved_at__isnull=True)
            closed = sorted(due.values_list("pk", flat=True))
            Flag.objects.for_institution(institution).filter(pk__in=closed).update(
                resolved_at=timezone.now(), resolved_by=None, resolution=_flag_resolution(policy, plan, job),
                updated_at=timezone.now())
        done["flags_closed"] = closed
        job_progress(job, done=1, stage="erasing students")
    rule = _rule_text(policy, plan)
    students = Student.objects.for_institution(institution)
    for step, student_id in enumerate(student_ids, start=1 + (1 if flag_ids else 0)):
        student = students.filter(pk=student_id).first()
        record = student and student_erase_recorded(institution=institution, student=student,
                                                    via=ErasureVia.RETENTION, job=job, rule=rule)
        if record is not None:
            done["erasure_ids"].append(str(record.erasure_id))
        job_progress(job, done=step)


def retention_rules_summary(policy: RetentionPolicy) -> dict:
    return {
        "erase_after_days": policy.erase_after_days,
        "close_flags_after_days": policy.close_flags_after_days,
        "term_end_dates": list(policy.term_end_dates or []),
        "set_by": getattr(policy.updated_by, "username", None),
        "set_at": policy.updated_at.isoformat() if policy.updated_at else None,
    }


def periodic_task_name(institution: Institution) -> str:
    return f"privacy:retention:institution-{institution.pk}"


def retention_policy_save(*, institution: Institution, policy: RetentionPolicy, user) -> RetentionPolicy:
    """Store the rules (recording who set them) and keep the daily beat entry in line."""
    if policy.institution_id != institution.pk:
        raise RetentionRuleError("These rules belong to another institution.")
    policy.updated_by = user
    with transaction.atomic():
        policy.save()
        retention_schedule_sync(institution=institution, policy=policy)
    return policy


def retention_schedule_sync(*, institution: Institution, policy: RetentionPolicy) -> None:
    """The institution's daily beat entry: present while the rules are on and say something."""
    name = periodic_task_name(institution)
    if not (policy.enabled and policy.has_rules):
        PeriodicTask.objects.filter(name=name).delete()
        return
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute="30", hour=str(policy.run_hour), day_of_week="*", day_of_month="*", month_of_year="*",
        timezone=institution.timezone,
    )
    PeriodicTask.objects.update_or_create(name=name, defaults={
        "task": SCHEDULED_TASK, "crontab": crontab, "interval": None, "enabled": True,
        "kwargs": json.dumps({"institution_id": institution.pk}),
        "description": f"retention rules of {institution.name} (daily)",
    })


def retention_schedule(*, institution: Institution) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=periodic_task_name(institution)).select_related("crontab").first()


def retention_runs(*, institution: Institution, limit: int = 10):
    return Job.objects.for_institution(institution).filter(kind=JobKind.RETENTION).select_related(
        "created_by").order_by("-created_at", "-id")[:limit]
