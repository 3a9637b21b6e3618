"""Progress surveys: writes and the rules they follow (docs/advisor-guide.md, "Progress surveys").

An administrator opens a survey for a term; every instructor teaching a section of that term who
has an email address gets a link ``/survey/<token>/``. The token is ``<institution id>.<random
secret>``; only its keyed hash (HMAC-SHA256 with ``SECRET_KEY``) is stored, so the database alone
cannot rebuild a link. The link opens only that instructor's own sections of the survey's term,
only inside the survey's window, and stops working when the survey closes (every invitation is
revoked). A reminder carries a fresh link: the earlier one can no longer be rebuilt, so it is
replaced (and stops working).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify

from accounts.language import recipient_language
from accounts.login_protection import client_address
from audit.models import AccessAction
from audit.services import Accessor, access_record
from institutions.models import Institution
from institutions.scoping import institution_scope

from .models import (
    DEFAULT_CONCERN_TYPES,
    AcademicSession,
    ConcernKind,
    ConcernType,
    Instructor,
    ProgressSurvey,
    Section,
    SectionTerm,
    SurveyInvitation,
    SurveyMark,
    SurveyStatus,
    TeachingAssignment,
)
from .signals import survey_marks_saved

SURVEY_MAX_DAYS = 60
TITLE_MAX = 200
MESSAGE_MAX = 2000
COMMENT_MAX = 1000
CONCERN_TYPES_MAX = 30
TOKEN_SEPARATOR = "."


class SurveyRuleError(Exception):
    """A write the rules refuse; ``errors`` maps a field ("" for the whole form) to messages."""

    def __init__(self, errors: Mapping[str, str | list[str]]):
        self.errors = {key: [value] if isinstance(value, str) else list(value) for key, value in errors.items()}
        super().__init__("; ".join(message for messages in self.errors.values() for message in messages))


# --- Concern types ---------------------------------------------------------------------------------------------

def concern_type_create_defaults(*, institution: Institution) -> None:
    """Give an institution the default concern types (idempotent: one that has any is left alone).

    Runs when an institution is created (:mod:`courses.new_institution`); the data migration 0004
    did the same once for the institutions that existed before."""
    types = ConcernType.objects.for_institution(institution)
    if types.exists():
        return
    types.bulk_create(
        [ConcernType(institution=institution, key=key, label=label, kind=kind, position=position)
         for position, (key, label, kind) in enumerate(DEFAULT_CONCERN_TYPES)],
        ignore_conflicts=True,
    )


def _clean_label(label) -> str:
    label = " ".join(str(label or "").split())
    if not label:
        raise SurveyRuleError({"label": "Give it a label instructors will understand."})
    if len(label) > 120:
        raise SurveyRuleError({"label": "At most 120 characters."})
    return label


@transaction.atomic
def concern_type_create(*, institution: Institution, label: str, kind: str, description: str = "") -> ConcernType:
    types = ConcernType.objects.for_institution(institution)
    label = _clean_label(label)
    if kind not in ConcernKind.values:
        raise SurveyRuleError({"kind": "Choose concern or kudos."})
    if types.count() >= CONCERN_TYPES_MAX:
        raise SurveyRuleError({"": f"An institution has at most {CONCERN_TYPES_MAX} concern types; "
                                   "deactivate or rename one instead."})
    base = slugify(label).replace("-", "_")[:50] or "type"
    key, n = base, 1
    taken = set(types.values_list("key", flat=True))
    while key in taken:
        n += 1
        key = f"{base}_{n}"
    position = (types.aggregate(last=Max("position"))["last"] or 0) + 1
    return types.create(key=key, label=label, kind=kind, description=str(description or "")[:255].strip(),
                        position=position)


@transaction.atomic
def concern_type_update(*, institution: Institution, concern_type: ConcernType, label=None, is_active=None,
                        description=None) -> ConcernType:
    """Rename or (de)activate a type; its key, its kind and the marks already made keep."""
    if concern_type.institution_id != institution.pk:
        raise SurveyRuleError({"": "No such concern type."})
    fields = ["updated_at"]
    if label is not None:
        concern_type.label = _clean_label(label)
        fields.append("label")
    if description is not None:
        concern_type.description = str(description)[:255].strip()
        fields.append("description")
    if is_active is not None:
        concern_type.is_active = bool(is_active)
        fields.append("is_active")
    concern_type.save(update_fields=fields)
    return concern_type


@transaction.atomic
def concern_type_move(*, institution: Institution, concern_type: ConcernType, offset: int) -> None:
    """Move a type up (-1) or down (+1) in the order instructors see; positions renumbered 0..n-1."""
    ordered = list(ConcernType.objects.for_institution(institution).select_for_update().order_by(
        "position", "label", "id"))
    index = next(i for i, item in enumerate(ordered) if item.pk == concern_type.pk)
    target = max(0, min(len(ordered) - 1, index + offset))
    ordered.insert(target, ordered.pop(index))
    for position, item in enumerate(ordered):
        if item.position != position:
            item.position = position
            item.save(update_fields=["position", "updated_at"])


# --- Opening a survey ------------------------------------------------------------------------------------------

@dataclass
class SurveyPreview:
    """What opening a survey for ``term`` will do; nothing is written or sent to compute it."""

    term: AcademicSession
    sections: int
    instructors: list[Instructor]
    without_email: list[Instructor]

    @property
    def to_email(self) -> int:
        return len(self.instructors)

    @property
    def fingerprint(self) -> str:
        """Changes when who would be emailed changes (checked again on confirmation)."""
        ids = ",".join(str(i.pk) for i in self.instructors)
        return hashlib.sha256(f"{self.term.pk}:{self.sections}:{ids}".encode()).hexdigest()[:16]


def _term_sections(institution: Institution, term: AcademicSession):
    return SectionTerm.objects.for_institution(institution).filter(term=term).values("section_id")


def survey_preview(*, institution: Institution, term: AcademicSession) -> SurveyPreview:
    if term.institution_id != institution.pk:
        raise SurveyRuleError({"term": "Choose one of your institution's terms."})
    sections = _term_sections(institution, term)
    teaching = TeachingAssignment.objects.for_institution(institution).filter(section_id__in=sections)
    instructors = list(Instructor.objects.for_institution(institution).filter(
        pk__in=teaching.values("instructor_id")).order_by("family_name", "given_name", "id"))
    section_count = teaching.values("section_id").distinct().count()
    return SurveyPreview(term=term, sections=section_count,
                         instructors=[i for i in instructors if i.email],
                         without_email=[i for i in instructors if not i.email])


def survey_validate(*, institution: Institution, data: Mapping, now: datetime.datetime | None = None) -> dict:
    """Check what an administrator asks for; returns the cleaned values or raises SurveyRuleError."""
    now = now or timezone.now()
    errors: dict[str, str] = {}
    title = " ".join(str(data.get("title") or "").split())
    if not title:
        errors["title"] = "Give the survey a title instructors will recognise."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"At most {TITLE_MAX} characters."
    message = str(data.get("message") or "").strip()
    if len(message) > MESSAGE_MAX:
        errors["message"] = f"At most {MESSAGE_MAX} characters."
    opens_at, closes_at = data.get("opens_at"), data.get("closes_at")
    if not isinstance(opens_at, datetime.datetime):
        errors["opens_at"] = "Give the date and time the survey opens."
    if not isinstance(closes_at, datetime.datetime):
        errors["closes_at"] = "Give the date and time the survey closes."
    if isinstance(opens_at, datetime.datetime) and isinstance(closes_at, datetime.datetime):
        if closes_at <= opens_at:
            errors["closes_at"] = "The survey must close after it opens."
        elif closes_at - opens_at > datetime.timedelta(days=SURVEY_MAX_DAYS):
            errors["closes_at"] = f"A survey stays open at most {SURVEY_MAX_DAYS} days."
        elif closes_at <= now:
            errors["closes_at"] = "That time has passed: the survey would be closed already."
    auto_remind_at = data.get("auto_remind_at") or None
    if auto_remind_at is not None and isinstance(opens_at, datetime.datetime) and isinstance(
            closes_at, datetime.datetime) and not (opens_at < auto_remind_at < closes_at):
        errors["auto_remind_at"] = "The automatic reminder goes while the survey is open: after it opens, " \
                                   "before it closes."
    term = data.get("term")
    if not isinstance(term, AcademicSession) or term.institution_id != institution.pk:
        errors["term"] = "Choose one of your institution's terms."
    wanted = [int(pk) for pk in data.get("concern_type_ids") or []]
    offered = list(ConcernType.objects.for_institution(institution).filter(pk__in=wanted, is_active=True)
                   .order_by("position", "label", "id"))
    if not wanted:
        errors["concern_type_ids"] = "Offer at least one concern type or kudos."
    elif len(offered) != len(set(wanted)):
        errors["concern_type_ids"] = "Choose among the active concern types."
    if errors:
        raise SurveyRuleError(errors)
    return {"title": title, "message": message, "opens_at": opens_at, "closes_at": closes_at, "term": term,
            "concern_type_ids": [t.pk for t in offered], "auto_remind_at": auto_remind_at}


class SurveyPreviewChanged(Exception):
    """The term's instructors changed between the preview and the confirmation; nothing was done."""

    def __init__(self, preview: SurveyPreview):
        self.preview = preview
        super().__init__("the survey's recipients changed since the preview")


def _new_token(institution: Institution) -> tuple[str, str]:
    raw = f"{institution.pk}{TOKEN_SEPARATOR}{secrets.token_urlsafe(32)}"
    return raw, survey_token_hash(raw)


def survey_token_hash(raw: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), b"progress-survey-link\x00" + raw.encode(),
                    hashlib.sha256).hexdigest()


def survey_link(raw: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("survey-answer", args=[raw])


def survey_open(*, institution: Institution, data: Mapping, user, expected_fingerprint: str) -> ProgressSurvey:
    """Open the survey and email every instructor of the term who has an address (after commit).

    ``expected_fingerprint`` is the preview's: if who would be emailed changed since, nothing is
    written and :class:`SurveyPreviewChanged` carries the new preview."""
    cleaned = survey_validate(institution=institution, data=data)
    with transaction.atomic():
        preview = survey_preview(institution=institution, term=cleaned["term"])
        if preview.fingerprint != expected_fingerprint:
            raise SurveyPreviewChanged(preview)
        survey = ProgressSurvey.objects.for_institution(institution).create(
            term=cleaned["term"], title=cleaned["title"], message=cleaned["message"], opens_at=cleaned["opens_at"],
            closes_at=cleaned["closes_at"], concern_type_ids=cleaned["concern_type_ids"], opened_by=user,
            auto_remind_at=cleaned["auto_remind_at"],
        )
        now = timezone.now()
        links = []
        for instructor in preview.instructors:
            raw, token_hash = _new_token(institution)
            SurveyInvitation.objects.for_institution(institution).create(
                survey=survey, instructor=instructor, token_hash=token_hash, sent_at=now)
            links.append((instructor, raw))
        transaction.on_commit(lambda: _send_links(institution, survey, links, reminder=False))
    return survey


def _send_links(institution: Institution, survey: ProgressSurvey, links: list[tuple[Instructor, str]], *,
                reminder: bool) -> None:
    messages = []
    # Instructors have no account: the institution's language.
    language = recipient_language(institution=institution)
    for instructor, raw in links:
        context = {"institution": institution, "survey": survey, "instructor": instructor, "link": survey_link(raw),
                   "reminder": reminder, "time_zone": institution.timezone}
        with timezone.override(institution.timezone), translation.override(language):
            subject = render_to_string("courses/email/survey_subject.txt", context).strip()
            body = render_to_string("courses/email/survey_body.txt", context)
        messages.append(EmailMessage(subject=" ".join(subject.split()), body=body, to=[instructor.email]))
    if messages:
        get_connection(fail_silently=True).send_messages(messages)


# --- Closing and reminders -------------------------------------------------------------------------------------

@transaction.atomic
def survey_close(*, institution: Institution, survey: ProgressSurvey, user=None) -> ProgressSurvey:
    """Close the survey (by hand, or ``user=None`` when its window ended) and revoke every link."""
    survey = ProgressSurvey.objects.for_institution(institution).select_for_update().get(pk=survey.pk)
    if survey.status == SurveyStatus.CLOSED:
        return survey
    now = timezone.now()
    survey.status, survey.closed_at, survey.closed_by = SurveyStatus.CLOSED, now, user
    survey.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
    SurveyInvitation.objects.for_institution(institution).filter(survey=survey, revoked_at__isnull=True).update(
        revoked_at=now)
    return survey


def surveys_close_ended(*, now: datetime.datetime | None = None) -> int:
    """Close every open survey whose window has ended, each in its institution's scope (beat task)."""
    now = now or timezone.now()
    ended = list(ProgressSurvey.objects.unscoped().filter(status=SurveyStatus.OPEN, closes_at__lte=now)
                 .values_list("institution_id", "pk"))
    institutions = Institution.objects.in_bulk({institution_id for institution_id, _ in ended})
    for institution_id, pk in ended:
        institution = institutions[institution_id]
        with institution_scope(institution):
            survey = ProgressSurvey.objects.for_institution(institution).get(pk=pk)
            survey_close(institution=institution, survey=survey, user=None)
    return len(ended)


def _not_answered(institution: Institution, survey: ProgressSurvey):
    return (SurveyInvitation.objects.for_institution(institution)
            .filter(survey=survey, answered_at__isnull=True, revoked_at__isnull=True)
            .exclude(instructor__email="").select_related("instructor"))


def survey_reminder_count(*, institution: Institution, survey: ProgressSurvey) -> int:
    return _not_answered(institution, survey).count()


def survey_send_reminders(*, institution: Institution, survey: ProgressSurvey, user, expected: int) -> int:
    """Email a fresh link to every invited instructor who has not answered; returns how many.

    ``expected`` is the count the administrator was shown; a different count changes nothing
    (raises SurveyRuleError), as does a survey that is not open."""
    if not survey_is_open(survey):
        raise SurveyRuleError({"": "Reminders go out only while the survey is open."})
    with transaction.atomic():
        pending = list(_not_answered(institution, survey).select_for_update(of=("self",)))
        if len(pending) != expected:
            raise SurveyRuleError({"": f"{len(pending)} instructor(s) have not answered now, not {expected}; "
                                       "nothing was sent. Check the count and send again."})
        return _remind(institution, survey, pending, user=user)


def _remind(institution: Institution, survey: ProgressSurvey, pending: list[SurveyInvitation], *, user) -> int:
    """Inside the caller's transaction: a fresh link for each of ``pending``, emailed after commit."""
    now = timezone.now()
    links = []
    for invitation in pending:
        raw, invitation.token_hash = _new_token(institution)
        invitation.reminded_at, invitation.reminders_sent = now, invitation.reminders_sent + 1
        invitation.save(update_fields=["token_hash", "reminded_at", "reminders_sent"])
        links.append((invitation.instructor, raw))
    ProgressSurvey.objects.for_institution(institution).filter(pk=survey.pk).update(
        last_reminded_at=now, last_reminded_by=user, updated_at=now)
    transaction.on_commit(lambda: _send_links(institution, survey, links, reminder=True))
    return len(links)


def surveys_send_due_reminders(*, now: datetime.datetime | None = None) -> int:
    """Send each open survey's automatic reminder once its time has come (beat task); returns how
    many surveys reminded. Only instructors who have not answered get one, as by hand."""
    now = now or timezone.now()
    due = list(ProgressSurvey.objects.unscoped().filter(
        status=SurveyStatus.OPEN, auto_remind_at__lte=now, auto_reminded_at__isnull=True, closes_at__gt=now,
        opens_at__lte=now).values_list("institution_id", "pk"))
    institutions = Institution.objects.in_bulk({institution_id for institution_id, _ in due})
    reminded = 0
    for institution_id, pk in due:
        institution = institutions[institution_id]
        with institution_scope(institution), transaction.atomic():
            survey = (ProgressSurvey.objects.for_institution(institution).select_for_update()
                      .filter(pk=pk, auto_reminded_at__isnull=True, status=SurveyStatus.OPEN).first())
            if survey is None:  # another beat run or a close got there first
                continue
            survey.auto_reminded_at = now
            survey.save(update_fields=["auto_reminded_at", "updated_at"])
            _remind(institution, survey, list(_not_answered(institution, survey).select_for_update(of=("self",))),
                    user=None)
            reminded += 1
    return reminded


def survey_is_open(survey: ProgressSurvey, now: datetime.datetime | None = None) -> bool:
    now = now or timezone.now()
    return survey.status == SurveyStatus.OPEN and survey.opens_at <= now < survey.closes_at


# --- The instructor's link -------------------------------------------------------------------------------------

class SurveyLinkRefused(Exception):
    """The link opens nothing; ``reason`` is one of: unknown, revoked, closed, not_open."""

    def __init__(self, reason: str, survey: ProgressSurvey | None = None,
                 invitation: SurveyInvitation | None = None):
        self.reason, self.survey, self.invitation = reason, survey, invitation
        super().__init__(reason)


def survey_link_resolve(*, token: str, now: datetime.datetime | None = None) -> SurveyInvitation:
    """The invitation the link's token opens (survey, term, instructor and institution loaded).

    Raises :class:`SurveyLinkRefused`: ``unknown`` (malformed, tampered, another institution's id
    in front of a secret, or a link replaced by a reminder), ``revoked``/``closed`` (the survey
    closed), ``not_open`` (before the window opens or after it ended)."""
    now = now or timezone.now()
    head, sep, secret = str(token).partition(TOKEN_SEPARATOR)
    if not sep or not head.isdigit() or len(head) > 18 or not 20 <= len(secret) <= 100:
        raise SurveyLinkRefused("unknown")
    institution = Institution.objects.filter(pk=int(head)).first()
    if institution is None:
        raise SurveyLinkRefused("unknown")
    invitation = (SurveyInvitation.objects.for_institution(institution)
                  .select_related("survey", "survey__term", "instructor", "institution")
                  .filter(token_hash=survey_token_hash(token)).first())
    if invitation is None:
        raise SurveyLinkRefused("unknown")
    survey = invitation.survey
    survey.institution = invitation.institution
    if survey.status == SurveyStatus.CLOSED:
        raise SurveyLinkRefused("closed", survey)
    if invitation.revoked_at is not None:
        raise SurveyLinkRefused("revoked", survey)
    if now < survey.opens_at:
        raise SurveyLinkRefused("not_open", survey, invitation)
    if now >= survey.closes_at:
        raise SurveyLinkRefused("closed", survey)
    return invitation


def survey_record_opened(*, invitation: SurveyInvitation) -> None:
    if invitation.first_opened_at is None:
        invitation.first_opened_at = timezone.now()
        SurveyInvitation.objects.for_institution(invitation.institution).filter(
            pk=invitation.pk, first_opened_at__isnull=True).update(first_opened_at=invitation.first_opened_at)


def survey_roster_read_record(request, *, invitation: SurveyInvitation, students: int) -> None:
    """The access log's entry for an instructor reading their roster (names and student ids): who
    (the instructor, no account), which invitation, how many students, from where."""
    try:
        address = str(ipaddress.ip_address(client_address(request)))
    except ValueError:
        address = None
    access_record(institution=invitation.institution, action=AccessAction.SURVEY_ROSTER,
                  accessor=Accessor(name=f"Instructor {invitation.instructor.display_name} (survey link)"[:200],
                                    ip_address=address),
                  object_id=invitation.pk, result_count=students,
                  filters={"survey": invitation.survey_id, "instructor": invitation.instructor_id})


@dataclass
class RosterAnswer:
    """What the instructor ticked for one student of one section."""

    type_ids: set[int] = field(default_factory=set)
    comment: str = ""


class SurveyAnswerInvalid(Exception):
    """A POST the page did not produce (unknown field, a foreign student or section, too long);
    nothing was saved."""


def survey_answer_parse(*, post: Mapping[str, str], student_ids: Iterable[int], type_ids: Iterable[int]
                        ) -> dict[int, RosterAnswer]:
    """Read one section's form: ``m:<student>:<type>`` checkboxes and ``c:<student>`` comments.

    Every field must name a student of the section and an offered type; anything else raises
    :class:`SurveyAnswerInvalid` with a message for the instructor."""
    students, types = set(student_ids), set(type_ids)
    if len(post) > len(students) * (len(types) + 1) + 4:
        raise SurveyAnswerInvalid("The form sent more fields than this roster has; nothing was saved.")
    answers = {student_id: RosterAnswer() for student_id in students}
    for name, value in post.items():
        if name in ("csrfmiddlewaretoken", "section", "save"):
            continue
        parts = name.split(":")
        try:
            numbers = [int(part) for part in parts[1:]]
        except ValueError:
            raise SurveyAnswerInvalid("The form sent a field this page does not have; nothing was saved.") from None
        if parts[0] == "m" and len(numbers) == 2 and numbers[0] in students and numbers[1] in types:
            answers[numbers[0]].type_ids.add(numbers[1])
        elif parts[0] == "c" and len(numbers) == 1 and numbers[0] in students:
            comment = str(value).strip()
            if len(comment) > COMMENT_MAX:
                raise SurveyAnswerInvalid(f"A comment is at most {COMMENT_MAX} characters; nothing was saved.")
            answers[numbers[0]].comment = comment
        else:
            raise SurveyAnswerInvalid("The form named a student or a choice that is not on this roster; "
                                      "nothing was saved.")
    lonely = [student_id for student_id, answer in answers.items() if answer.comment and not answer.type_ids]
    if lonely:
        raise SurveyAnswerInvalid("A comment goes with a concern or kudos: tick at least one for every student "
                                  "you commented on (or clear the comment); nothing was saved.")
    return answers


@dataclass
class SavedMarks:
    created: list[SurveyMark]
    updated: list[SurveyMark]
    removed: list[int]


def survey_marks_save(*, invitation: SurveyInvitation, section: Section, answers: Mapping[int, RosterAnswer]
                      ) -> SavedMarks:
    """Make the section's marks what the instructor ticked: create, update comments, remove the
    unticked; then tell the apps above (``survey_marks_saved``) in the same transaction."""
    institution = invitation.institution
    marks = SurveyMark.objects.for_institution(institution)
    with transaction.atomic():
        locked = SurveyInvitation.objects.for_institution(institution).select_for_update().get(pk=invitation.pk)
        # Only the students on the form: a mark about a student who left the section since stays.
        existing = {(m.student_id, m.concern_type_id): m for m in marks.filter(
            invitation=locked, section=section, student_id__in=list(answers))}
        created, updated, removed = [], [], []
        wanted = {(student_id, type_id): answer.comment for student_id, answer in answers.items()
                  for type_id in answer.type_ids}
        for key, mark in existing.items():
            if key not in wanted:
                removed.append(mark.pk)
            elif mark.comment != wanted[key]:
                mark.comment = wanted[key]
                mark.save(update_fields=["comment", "updated_at"])
                updated.append(mark)
        if removed:
            marks.filter(pk__in=removed).delete()
        for (student_id, type_id), comment in wanted.items():
            if (student_id, type_id) not in existing:
                created.append(marks.create(invitation=locked, section=section, student_id=student_id,
                                            concern_type_id=type_id, comment=comment))
        locked.answered_at = timezone.now()
        if locked.first_opened_at is None:
            locked.first_opened_at = locked.answered_at
        locked.save(update_fields=["answered_at", "first_opened_at"])
        invitation.answered_at, invitation.first_opened_at = locked.answered_at, locked.first_opened_at
        survey_marks_saved.send(sender=SurveyMark, institution=institution, invitation=locked, created=created,
                                updated=updated, removed=removed)
    return SavedMarks(created, updated, removed)
