"""Need-to-know access: the one rule deciding which students a restricted member may see.

An institution turns it on (``Institution.need_to_know_access``); from then on a member whose role
sees students but not all of them (advisors: ``view_students`` without ``view_all_students``) sees
only the students

- in their caseload (``Student.advisor``),
- granted to them by an administrator (:class:`~interventions.models.StudentAccessGrant`, not
  revoked, not expired), or
- with an open flag routed to them (``Flag.assigned_to``), or
- with an alert not yet closed assigned to them or to an office they belong to (``Alert``).

The rule is applied in one place: :func:`need_to_know_rows`, registered with
``institutions.scoping`` as a row rule, narrows every tenant queryset built while a request of such
a member runs (the page and API base classes set the ``ViewerRestriction``). So every list, search,
count, export, what-if, profile and API read goes through it without each view asking: a student
row is kept only when visible, and a row of any model with a foreign key to a student (predictions,
interventions, flags, activity, change history, grants) only when its student is visible. An id
outside the relationship then resolves like a missing one (404). The API's hand-written student
reads (``students.orm_bypass``) step aside while a restriction is set.
"""

from __future__ import annotations

from functools import cache

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from institutions.scoping import TenantQuerySet, ViewerRestriction
from students.models import Student

from .models import Alert, AlertStatus, Flag, OfficeMember, StudentAccessGrant


def visible_condition(*, institution_id: int, user_id: int) -> Q:
    """On a Student queryset: the students ``user_id`` may see under need-to-know.

    Built on the base managers (``all_institutions``) with the institution bound by hand: the row
    rule must not apply itself to its own subqueries."""
    now = timezone.now()
    grants = StudentAccessGrant.all_institutions.filter(
        institution_id=institution_id, user_id=user_id, student_id=OuterRef("pk"), revoked_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    routed = Flag.all_institutions.filter(
        institution_id=institution_id, assigned_to_id=user_id, student_id=OuterRef("pk"), resolved_at__isnull=True,
    )
    offices = OfficeMember.all_institutions.filter(institution_id=institution_id, user_id=user_id).values("office_id")
    alerts = Alert.all_institutions.filter(institution_id=institution_id, student_id=OuterRef("pk")).exclude(
        status=AlertStatus.CLOSED).filter(Q(assigned_user_id=user_id) | Q(assigned_office_id__in=offices))
    return Q(advisor_id=user_id) | Exists(grants) | Exists(routed) | Exists(alerts)


def visible_student_ids(*, institution_id: int, user_id: int) -> QuerySet:
    return Student.all_institutions.filter(institution_id=institution_id).filter(
        visible_condition(institution_id=institution_id, user_id=user_id)
    ).values("pk")


@cache
def _student_field(model) -> str | None:
    """The name of ``model``'s foreign key to Student (None: not linked to one student)."""
    if model is Student:
        return "pk"
    for field in model._meta.concrete_fields:
        if field.is_relation and field.related_model is Student:
            return field.name
    return None


def need_to_know_rows(queryset: TenantQuerySet, restriction: ViewerRestriction) -> TenantQuerySet:
    """The row rule: ``queryset`` narrowed to what ``restriction``'s member may see."""
    field = _student_field(queryset.model)
    if field is None:
        return queryset
    if field == "pk":
        return queryset.filter(visible_condition(institution_id=restriction.institution_id,
                                                 user_id=restriction.user_id))
    return queryset.filter(**{f"{field}__in": visible_student_ids(institution_id=restriction.institution_id,
                                                                  user_id=restriction.user_id)})
