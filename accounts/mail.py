"""Account emails (invitations, password resets, anything sent with Django's mail functions) leave
the web request through a Celery task (docs/accounts.md, "Email").

``EMAIL_BACKEND`` is :class:`QueuedEmailBackend`: it seals each message and queues it; the
worker's :func:`accounts.tasks.send_account_email` opens it and hands it to
``EMAIL_DELIVERY_BACKEND`` (SMTP, or the console), retrying while the mail server is unreachable.
A request therefore never waits for, or fails because of, the mail server.

Emails carry secrets (an invitation's or a password reset's link), so what is queued is
Fernet-encrypted (key derived from ``SECRET_KEY``): the broker's copy, the worker's debug log and
task monitors see only ciphertext, and the task keeps no result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class SealedEmailUnreadable(Exception):
    """A queued email that cannot be opened (the secret key changed, or it was tampered with)."""


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"dropout_platform queued email\x00" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def email_seal(message: EmailMessage) -> str:
    """The queued form of ``message``: text parts, HTML alternatives, headers; no attachments
    (no account email has any)."""
    if message.attachments:
        raise ValueError("queued account emails carry no attachments")
    data = {
        "subject": str(message.subject), "body": str(message.body), "from_email": message.from_email,
        "to": list(message.to), "cc": list(message.cc), "bcc": list(message.bcc),
        "reply_to": list(message.reply_to), "headers": dict(message.extra_headers),
        "alternatives": [[str(content), mimetype] for content, mimetype in getattr(message, "alternatives", [])],
    }
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def email_open(sealed: str) -> EmailMultiAlternatives:
    try:
        data = json.loads(_fernet().decrypt(sealed.encode()))
    except (InvalidToken, ValueError):
        raise SealedEmailUnreadable("a queued email could not be opened") from None
    alternatives = data.pop("alternatives")
    message = EmailMultiAlternatives(**data)
    for content, mimetype in alternatives:
        message.attach_alternative(content, mimetype)
    return message


def email_deliver(sealed: str) -> None:
    """Send one sealed email now through the delivery backend; raises OSError (smtplib's
    errors included) when the mail server cannot be reached or refuses."""
    message = email_open(sealed)
    connection = get_connection(settings.EMAIL_DELIVERY_BACKEND, fail_silently=False)
    message.connection = connection
    message.send()


class QueuedEmailBackend(BaseEmailBackend):
    """Queue every message for the worker and answer at once, whatever happens to it.

    A broker that cannot be reached is logged (without the message) and the message is dropped:
    the person asks again (a new invitation, a new reset), as after any lost email. With
    ``CELERY_TASK_ALWAYS_EAGER`` the task and its retries run here, and a last failure is logged,
    not raised.
    """

    def send_messages(self, email_messages) -> int:
        from .tasks import send_account_email

        queued = 0
        for message in email_messages:
            if not message.recipients():
                continue
            sealed = email_seal(message)
            try:
                send_account_email.apply_async(args=[sealed], argsrepr="(sealed email)", kwargsrepr="{}")
            except Exception as exc:  # a request never fails for the mail queue
                # The class only: an SMTP reply or a broker error could quote the message.
                logger.error("An account email was not queued or not delivered (%s)", exc.__class__.__name__)
                continue
            queued += 1
        return queued


PRINTING_BACKENDS = ("django.core.mail.backends.console.EmailBackend",
                     "django.core.mail.backends.filebased.EmailBackend")


def emails_only_printed() -> bool:
    """No mail server is configured: emails end up on a console or in files (then a command that
    sends a link prints it for the operator to hand over)."""
    backend = settings.EMAIL_BACKEND
    if backend == f"{__name__}.QueuedEmailBackend":
        backend = settings.EMAIL_DELIVERY_BACKEND
    return backend in PRINTING_BACKENDS
