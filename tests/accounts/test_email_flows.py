"""Invitation, password reset and password change end to end, the emails going through a real
SMTP server (aiosmtpd) that the test starts on the loopback address. Emails leave the request
through a Celery task (accounts/mail.py): in-process here, on a real worker in the tests marked
``worker``."""

import email
import re
import socket
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import Invitation
from institutions.models import Membership
from tests.conftest import celery_worker_started, needs_redis, tasks_sent_to

pytestmark = pytest.mark.django_db
STRONG = "correct-horse-battery-staple-42"
NEWER = "another-long-passphrase-77"


class Mailbox:
    """An aiosmtpd handler that keeps every message it is sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def last_body(self) -> str:
        return self.messages[-1][2].get_payload(decode=True).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def queue_through_the_task(settings):
    """As configured outside tests (pytest-django swaps EMAIL_BACKEND for its in-memory outbox)."""
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def smtp_server(settings):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    queue_through_the_task(settings)
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "Platform <platform@example.edu>"
    try:
        yield mailbox
    finally:
        controller.stop()


def logged_in(client: Client) -> bool:
    return client.get(reverse("password_change")).status_code == 200


def log_in(client: Client, username: str, password: str) -> bool:
    """Through the login page, as a person does (and as the login protection sees it)."""
    client.post(reverse("login"), {"username": username, "password": password})
    return logged_in(client)


def link_in(body: str) -> str:
    return re.search(r"https?://testserver(/\S+)", body).group(1)


def test_an_invitation_travels_through_smtp_and_its_link_creates_the_account(client, tenants, smtp_server):
    a, _b = tenants
    client.force_login(a.admin)
    response = client.post(reverse("invitation-list", args=["alpha"]),
                           {"email": "new.advisor@example.edu", "role": "advisor"})
    assert response.status_code == 302
    sender, recipients, message = smtp_server.messages[-1]
    assert sender == "platform@example.edu" and recipients == ["new.advisor@example.edu"]
    assert "ALPHA University" in message["Subject"]
    link = link_in(smtp_server.last_body())
    client.logout()
    assert client.post(link, {"username": "new.advisor", "password1": STRONG, "password2": STRONG}).status_code == 302
    assert log_in(Client(), "new.advisor", STRONG)
    assert Membership.objects.for_institution(a.institution).get(user__username="new.advisor").role == "advisor"


def test_a_mail_server_that_is_down_does_not_fail_the_invitation_and_nothing_secret_is_logged(
        client, tenant_a, settings, caplog):
    queue_through_the_task(settings)
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # nothing listens there
    client.force_login(tenant_a.admin)
    started = time.monotonic()
    response = client.post(reverse("invitation-list", args=["alpha"]), {"email": "x@example.edu", "role": "viewer"})
    assert response.status_code == 302 and time.monotonic() - started < 10
    assert Invitation.objects.for_institution(tenant_a.institution).get().email == "x@example.edu"
    # In-process, the task's retries ran at once and the last failure was logged, not raised.
    assert "not delivered after 9 tries (_Undelivered)" in caplog.text or "not queued or not delivered" in caplog.text
    assert "/accounts/invitations/" not in caplog.text and "x@example.edu" not in caplog.text


def test_a_password_reset_is_answered_the_same_while_the_mail_server_is_down(client, tenant_a, settings):
    queue_through_the_task(settings)
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()
    response = client.post(reverse("password_reset"), {"email": tenant_a.advisor.email}, follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0] == reverse("password_reset_done")


def redis_contents(url: str) -> bytes:
    """Every value in the Redis database (queued and unacknowledged messages included)."""
    import redis

    connection = redis.Redis.from_url(url)
    dump = []
    for key in connection.scan_iter():
        kind = connection.type(key)
        if kind == b"string":
            dump.append(connection.get(key))
        elif kind == b"list":
            dump.extend(connection.lrange(key, 0, -1))
        elif kind == b"hash":
            dump.extend(connection.hvals(key))
        elif kind == b"zset":
            dump.extend(connection.zrange(key, 0, -1))
        elif kind == b"set":
            dump.extend(connection.smembers(key))
    return b"\n".join(value or b"" for value in dump)


@pytest.fixture
def mail_worker(django_db_setup):
    """A real worker whose mail server is 127.0.0.1:<port>, where nothing listens yet; it retries
    every second or two (debug logging on, so that every line it could log is checked)."""
    port = _free_port()
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port), "EMAIL_USE_TLS": "0", "DP_TEST_TASKS_IN_PROCESS": "0",
           "EMAIL_RETRY_BASE_SECONDS": "1", "EMAIL_RETRY_MAX_SECONDS": "2"}
    worker = celery_worker_started("mail-", env, loglevel="DEBUG")
    details = next(worker)
    sending = tasks_sent_to(details)
    next(sending)
    try:
        yield {**details, "smtp_port": port}
    finally:
        sending.close()
        worker.close()


@pytest.mark.worker
@needs_redis
def test_on_a_real_worker_an_invitation_waits_for_the_mail_server_and_no_link_is_left_in_redis_or_logs(
        client, tenants, settings, mail_worker):
    a, _b = tenants
    queue_through_the_task(settings)
    settings.DEFAULT_FROM_EMAIL = "Platform <platform@example.edu>"  # the request decides the sender
    client.force_login(a.admin)
    started = time.monotonic()
    response = client.post(reverse("invitation-list", args=["alpha"]),
                           {"email": "late.mail@example.edu", "role": "advisor"})
    assert response.status_code == 302 and time.monotonic() - started < 5
    log = Path(mail_worker["log"])
    deadline = time.monotonic() + 30
    while "mail server unavailable" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "mail server unavailable" in log.read_text(), log.read_text()[-3000:]
    queued_meanwhile = redis_contents(settings.CELERY_BROKER_URL)

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mail_worker["smtp_port"])
    controller.start()
    try:
        deadline = time.monotonic() + 30
        while not mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        controller.stop()
    assert mailbox.messages, log.read_text()[-3000:]
    sender, recipients, _message = mailbox.messages[-1]
    assert recipients == ["late.mail@example.edu"] and sender == "platform@example.edu"
    link = link_in(mailbox.last_body())
    secret = link.rstrip("/").rsplit("/", 1)[-1]
    assert len(mailbox.messages) == 1
    assert secret.encode() not in queued_meanwhile and b"late.mail@example.edu" not in queued_meanwhile
    assert secret not in log.read_text() and "late.mail@example.edu" not in log.read_text()
    # The link works: the worker sent what the request made.
    client.logout()
    assert client.post(link, {"username": "late.mail", "password1": STRONG, "password2": STRONG}).status_code == 302
    assert Membership.objects.for_institution(a.institution).get(user__username="late.mail").role == "advisor"


def test_a_password_reset_by_email_sets_a_new_password_and_ends_other_sessions(tenant_a, smtp_server):
    elsewhere = Client()
    elsewhere.force_login(tenant_a.advisor)
    assert logged_in(elsewhere)
    client = Client()
    assert client.post(reverse("password_reset"), {"email": tenant_a.advisor.email}).status_code == 302
    assert smtp_server.messages[-1][1] == [tenant_a.advisor.email]
    link = link_in(smtp_server.last_body())
    form_page = client.get(link, follow=True)  # Django swaps the token for a session-held one
    assert form_page.context["validlink"]
    set_url = form_page.redirect_chain[-1][0]
    assert client.post(set_url, {"new_password1": NEWER, "new_password2": NEWER}).status_code == 302
    assert log_in(Client(), tenant_a.advisor.username, NEWER)
    assert not log_in(Client(), tenant_a.advisor.username, "pw-for-tests")
    # The old session is over, and the link cannot be used twice.
    assert not logged_in(elsewhere)
    assert not Client().get(link, follow=True).context["validlink"]


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, tenant_a, smtp_server):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.edu"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("password_reset_done")
    assert smtp_server.messages == []


def test_changing_the_password_keeps_this_session_and_ends_the_others(tenant_a):
    user = tenant_a.advisor
    here, there = Client(), Client()
    assert log_in(here, user.username, "pw-for-tests")
    assert log_in(there, user.username, "pw-for-tests")
    assert logged_in(there)
    response = here.post(reverse("password_change"), {
        "old_password": "pw-for-tests", "new_password1": NEWER, "new_password2": NEWER})
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    assert logged_in(here)
    assert not logged_in(there)
    assert get_user_model().objects.get(pk=user.pk).check_password(NEWER)


@pytest.mark.parametrize("weak", ["short", "password", "1234567890123"])
def test_a_weak_new_password_is_refused_and_the_old_one_still_works(client, tenant_a, weak):
    client.force_login(tenant_a.viewer)
    response = client.post(reverse("password_change"), {
        "old_password": "pw-for-tests", "new_password1": weak, "new_password2": weak})
    assert response.status_code == 200 and response.context["form"].errors
    assert get_user_model().objects.get(pk=tenant_a.viewer.pk).check_password("pw-for-tests")


def test_the_password_pages_use_the_site_layout(client, tenant_a):
    client.force_login(tenant_a.viewer)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert b"dropout_platform" in page.content and b"Change your password" in page.content
    assert b"django-admin" not in page.content.lower() and b"Django administration" not in page.content
    client.logout()
    assert b"Forgot your password?" in client.get(reverse("login")).content


def test_a_password_reset_lifts_the_lockout_of_that_account(tenant_a, smtp_server, settings):
    user = tenant_a.viewer
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post(reverse("login"), {"username": user.username, "password": "guess"}, REMOTE_ADDR="10.4.4.4")
    locked = Client().post(reverse("login"), {"username": user.username, "password": "pw-for-tests"})
    assert locked.status_code == 429
    client = Client()
    client.post(reverse("password_reset"), {"email": user.email})
    form_page = client.get(link_in(smtp_server.last_body()), follow=True)
    client.post(form_page.redirect_chain[-1][0], {"new_password1": NEWER, "new_password2": NEWER})
    assert log_in(Client(), user.username, NEWER)
