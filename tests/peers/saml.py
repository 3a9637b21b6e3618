"""A real SAML 2.0 identity provider for the SSO tests: tests/peers/saml_idp/run.py (pysaml2's
IdP server) run as a process of its own on 127.0.0.1, with an RSA key and a self-signed
certificate generated for the run. The ``saml_peer`` fixture starts it once per session; tests
add people, make it trust the platform's metadata and set a fault through its /control/ endpoint."""

from __future__ import annotations

import datetime
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.peers.oidc import _free_port
from tests.peers.process import peer_running

PEER = Path(__file__).resolve().parent / "saml_idp" / "run.py"


@dataclass
class SamlPeer:
    url: str
    control_token: str

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata"

    def control(self, **body) -> None:
        response = requests.post(f"{self.url}/control/", json=body, headers={"X-Peer-Token": self.control_token},
                                 timeout=10)
        response.raise_for_status()

    def add_person(self, username: str, *, password: str, email: str, affiliations: list[str],
                   first_name: str = "", last_name: str = "") -> None:
        self.control(users=[{"username": username, "password": password, "email": email,
                             "affiliations": affiliations, "first_name": first_name, "last_name": last_name,
                             "subject": f"campus-{username}"}])

    def trust(self, sp_metadata_xml: str) -> None:
        self.control(sp_metadata=sp_metadata_xml)

    def fault(self, mode: str) -> None:
        """'' (none), 'tamper', 'wrong_audience' or 'expired' (tests/peers/saml_idp/run.py)."""
        self.control(mode=mode)


def key_pair(folder: Path) -> None:
    """idp.key and a self-signed idp.crt (valid for a day) in ``folder``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "campus-saml-idp.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (folder / "idp.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                                       serialization.NoEncryption()))
    (folder / "idp.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="session")
def saml_peer():
    if not Path("/usr/bin/xmlsec1").exists():
        pytest.skip("xmlsec1 is not installed (apt-get install xmlsec1)")
    workdir = Path(tempfile.mkdtemp(prefix="saml-peer-"))
    key_pair(workdir)
    token = secrets.token_urlsafe(24)
    (workdir / "control-token").write_text(token)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    url = f"http://127.0.0.1:{port}"
    for _process in peer_running([sys.executable, str(PEER), str(port), str(workdir)], env=env, workdir=workdir,
                                 ready_url=f"{url}/metadata", what="SAML IdP"):
        yield SamlPeer(url=url, control_token=token)
