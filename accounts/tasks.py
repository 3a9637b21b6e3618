"""Celery tasks of accounts: sending account emails (accounts.mail)."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.conf import settings

from .mail import SealedEmailUnreadable, email_deliver

logger = logging.getLogger(__name__)


def _permanent(exc: OSError) -> bool:
    """A refusal that the same message will meet again: every recipient or the sender refused,
    or a 5xx reply to the message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None, time_limit=120, soft_time_limit=100)
def send_account_email(self, sealed: str) -> None:
    """Deliver one sealed email; while the mail server is unreachable (or answers 4xx), try again
    after EMAIL_RETRY_BASE_SECONDS * 2**attempt seconds (at most EMAIL_RETRY_MAX_SECONDS), up to
    EMAIL_RETRY_LIMIT times. Nothing of the message is logged; the task keeps no result."""
    try:
        email_deliver(sealed)
    except SealedEmailUnreadable:
        logger.error("send_account_email %s: the queued email cannot be opened (SECRET_KEY changed?); dropped",
                     self.request.id)
    except OSError as exc:  # smtplib's errors, refused and timed-out connections
        if _permanent(exc) or self.request.retries >= settings.EMAIL_RETRY_LIMIT:
            logger.error("send_account_email %s: not delivered after %d tries (%s); dropped",
                         self.request.id, self.request.retries + 1, exc.__class__.__name__)
            raise _Undelivered(exc.__class__.__name__) from None
        countdown = min(settings.EMAIL_RETRY_MAX_SECONDS, settings.EMAIL_RETRY_BASE_SECONDS * 2 ** self.request.retries)
        logger.warning("send_account_email %s: mail server unavailable (%s); try %d again in %ss",
                       self.request.id, exc.__class__.__name__, self.request.retries + 2, countdown)
        raise self.retry(countdown=countdown, exc=_Undelivered(exc.__class__.__name__)) from None


class _Undelivered(OSError):
    """The failure as Celery records and logs it: the error's class, never its text (an SMTP
    reply may quote the message or its addresses)."""
