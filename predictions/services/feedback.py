"""Advisors' feedback on a risk: "this risk looks wrong", kept beside the prediction it is about.

Feedback is read by people: the model page counts it per version, so an administrator sees
whether one version draws more "data wrong" or "factor not relevant" than the one before. It
never changes a score, a band, a rank or a flag by itself (tested): a score the advisors doubt
is corrected by fixing the data or retraining, both of which leave their own record.
"""

from __future__ import annotations

from institutions.models import Institution
from students.models import Student

from ..models import FeedbackReason, LatestPrediction, RiskFeedback

NOTE_MAX_CHARS = 2000


class FeedbackRefused(ValueError):
    """Feedback that cannot be stored; the message says why in words a person can act on."""


def risk_feedback_record(
    *, institution: Institution, student: Student, author, reason: str, note: str = "",
) -> RiskFeedback:
    """Store one advisor's feedback on the student's current risk (the latest prediction)."""
    note = (note or "").strip()
    if reason not in FeedbackReason.values:
        raise FeedbackRefused(f"Choose a reason: {', '.join(label for _, label in FeedbackReason.choices)}.")
    if reason == FeedbackReason.OTHER and not note:
        raise FeedbackRefused("Say in the note what looks wrong (the reason is 'other').")
    if len(note) > NOTE_MAX_CHARS:
        raise FeedbackRefused(f"Keep the note under {NOTE_MAX_CHARS} characters (it has {len(note)}).")
    latest = LatestPrediction.objects.for_institution(institution).filter(student=student).select_related(
        "prediction"
    ).first()
    if latest is None:
        raise FeedbackRefused("This student has no risk yet, so there is nothing to give feedback on.")
    return RiskFeedback.objects.for_institution(institution).create(
        student=student, prediction=latest.prediction, model_version_id=latest.model_version_id,
        risk=latest.risk, reason=reason, note=note, author=author,
    )
