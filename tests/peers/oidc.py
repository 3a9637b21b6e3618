"""A real OpenID Connect provider for the SSO tests: tests/peers/oidc_provider (django-oauth-toolkit)
run as a process of its own on 127.0.0.1, with an RSA signing key generated for the run. The
``oidc_peer`` fixture starts it once per session and stops it at the end; tests add people and
clients, and set a fault, through its /control/ endpoint."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers.process import peer_running

PEER_DIR = Path(__file__).resolve().parent / "oidc_provider"


@dataclass
class OidcPeer:
    url: str
    control_token: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def control(self, **body) -> None:
        response = requests.post(f"{self.url}/control/", json=body, headers={"X-Peer-Token": self.control_token},
                                 timeout=10)
        response.raise_for_status()

    def add_person(self, username: str, *, password: str, email: str, groups: list[str], first_name: str = "",
                   last_name: str = "") -> None:
        self.control(users=[{"username": username, "password": password, "email": email, "groups": groups,
                             "first_name": first_name, "last_name": last_name}])

    def add_client(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.control(clients=[{"client_id": client_id, "client_secret": client_secret,
                               "redirect_uris": [redirect_uri]}])

    def fault(self, mode: str) -> None:
        """'' (none), 'tamper', 'wrong_audience', 'expired', 'stale_nonce' or 'userinfo_other_subject'
        (see peer_validator.py)."""
        self.control(mode=mode)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_peer():
    workdir = Path(tempfile.mkdtemp(prefix="oidc-peer-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = workdir / "signing-key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    port = _free_port()
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env.update(PEER_DIR=str(workdir), PEER_PORT=str(port), PEER_SECRET_KEY=secrets.token_urlsafe(40),
               PEER_CONTROL_TOKEN=token, PEER_KEY_FILE=str(key_file))
    url = f"http://127.0.0.1:{port}"
    for _process in peer_running([sys.executable, str(PEER_DIR / "run.py")], env=env, workdir=workdir, cwd=PEER_DIR,
                                 ready_url=f"{url}/o/.well-known/openid-configuration", what="OIDC provider"):
        yield OidcPeer(url=url, control_token=token)
