"""Webhook deliveries reach only public addresses, exactly the one they checked, and say nothing
that tells a closed port from an open one. Real sockets on 127.0.0.1; the DNS answers are the
test's (a rebinding name server answers differently the second time)."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

from institutions import webhooks
from institutions.models import DeliveryStatus, WebhookDelivery
from institutions.webhooks import (
    DELIVERY_FAILED,
    WebhookTargetRefused,
    webhook_address_allowed,
    webhook_emit,
    webhook_endpoint_create,
    webhook_target_address,
)

REFUSED = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.1.2.3", "169.254.169.254", "0.0.0.0", "0.1.2.3",
    "100.64.0.1", "100.127.255.254", "192.0.0.8", "192.0.2.10", "192.88.99.1", "198.18.0.1", "198.51.100.7",
    "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::1", "100::1", "2001::1",
    "2001:db8::1", "2002::1", "2002:0a00:0001::1", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
]
ALLOWED = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "::ffff:8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_every_special_purpose_range_is_refused(address):
    assert not webhook_address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert webhook_address_allowed(ipaddress.ip_address(address))


def test_a_name_with_any_refused_address_is_refused_whatever_the_order(monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    for answer in (["8.8.8.8", "100.64.0.1"], ["2002::1", "8.8.8.8"]):
        monkeypatch.setattr(webhooks, "_resolve", lambda host, port, answer=answer: answer)
        with pytest.raises(WebhookTargetRefused):
            webhook_target_address("hooks.example.edu", 443)
    monkeypatch.setattr(webhooks, "_resolve", lambda host, port: ["8.8.8.8", "2606:4700:4700::1111"])
    assert webhook_target_address("hooks.example.edu", 443) == "8.8.8.8"


class RebindingResolver:
    """A name server under an attacker's control: the first answer passes the check, later ones
    point somewhere else (here: where the test's receiver listens)."""

    def __init__(self, first: str, later: str):
        self.first, self.later, self.calls = first, later, 0

    def __call__(self, host, port):
        self.calls += 1
        return [self.first if self.calls == 1 else self.later]


def _deliver(tenant, url):
    webhook_endpoint_create(institution=tenant.institution, url=url, events=["job.finished"])
    webhook_emit(institution=tenant.institution, event="job.finished", payload={})
    return WebhookDelivery.objects.for_institution(tenant.institution).get()


@pytest.mark.django_db
def test_delivery_connects_to_the_address_it_checked_not_to_a_second_answer(
        tenant_a, receiver, monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    port = receiver.server.server_address[1]
    # Checked answer 127.0.0.2 (nothing listens there); a second lookup would give the receiver's.
    resolver = RebindingResolver(first="127.0.0.2", later="127.0.0.1")
    monkeypatch.setattr(webhooks, "_resolve", resolver)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = _deliver(tenant_a, f"http://localhost:{port}/hooks")
    delivery.refresh_from_db()
    assert resolver.calls == 1 and receiver.requests == []
    assert delivery.status == DeliveryStatus.FAILED and delivery.error == DELIVERY_FAILED


@pytest.mark.django_db
def test_delivery_to_the_checked_address_names_the_urls_host(tenant_a, receiver, monkeypatch, settings,
                                                              django_capture_on_commit_callbacks):
    port = receiver.server.server_address[1]
    monkeypatch.setattr(webhooks, "_resolve", RebindingResolver(first="127.0.0.1", later="127.0.0.2"))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = _deliver(tenant_a, f"http://localhost:{port}/hooks?x=1")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    [request] = receiver.requests
    assert request.headers["Host"] == f"localhost:{port}" and request.path == "/hooks?x=1"


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class TcpServer:
    """An open port that is not a web server: closes at once, talks another protocol, or says nothing."""

    def __init__(self, behaviour: str):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.behaviour == "banner":
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
                conn.close()
            elif self.behaviour == "close":
                conn.close()
            else:
                self.held.append(conn)  # silent: the delivery times out

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["closed", "close", "banner", "silent"])
def test_closed_and_open_ports_fail_with_the_same_text(tenant_a, target, settings,
                                                        django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    server = None if target == "closed" else TcpServer(target)
    port = _closed_port() if server is None else server.port
    try:
        with django_capture_on_commit_callbacks(execute=True):
            delivery = _deliver(tenant_a, f"http://127.0.0.1:{port}/hooks")
    finally:
        if server is not None:
            server.stop()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == DELIVERY_FAILED and str(port) not in delivery.error
    assert delivery.response_status is None and delivery.response_body == ""
