"""Identity providers' client secrets at rest (docs/sso.md, "Secrets").

A secret typed into the set-up page is stored Fernet-encrypted (AES-128-CBC + HMAC-SHA256) with
the key ``SSO_SECRET_KEY`` (a Fernet key; ``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``), or, without it, a key derived from ``SECRET_KEY``.
Several keys may be given, comma-separated, newest first: the first encrypts, all decrypt (key
rotation). Instead of a secret an operator may store a reference ``env:SSO_CLIENT_SECRET_<NAME>``;
the value is then read from that environment variable at sign-in. Only variables with that prefix
can be referenced, so an institution's administrator cannot make the platform send any other
setting of the server to an identity provider.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

ENV_PREFIX = "env:"
ENV_NAME = re.compile(r"^SSO_CLIENT_SECRET_[A-Z0-9_]{1,64}$")


class SecretUnavailable(Exception):
    """The stored secret cannot be turned back into the secret (key changed, variable unset)."""


def _fernet() -> MultiFernet:
    configured = [key.strip() for key in (getattr(settings, "SSO_SECRET_KEY", "") or "").split(",") if key.strip()]
    if configured:
        keys = [Fernet(key.encode()) for key in configured]
    else:
        digest = hashlib.sha256(b"dropout_platform sso secrets\x00" + settings.SECRET_KEY.encode()).digest()
        keys = [Fernet(base64.urlsafe_b64encode(digest))]
    return MultiFernet(keys)


def is_env_reference(value: str) -> bool:
    return value.startswith(ENV_PREFIX)


def validate_env_reference(value: str) -> str | None:
    """None if ``value`` is an acceptable ``env:`` reference, else what is wrong with it."""
    name = value[len(ENV_PREFIX):]
    if not ENV_NAME.match(name):
        return ("An environment reference must be env:SSO_CLIENT_SECRET_<NAME> "
                "(capital letters, digits and underscores).")
    return None


def secret_seal(raw: str) -> str:
    """What to store for a secret (or an ``env:`` reference, stored as written)."""
    raw = raw.strip()
    if is_env_reference(raw):
        return raw
    return _fernet().encrypt(raw.encode()).decode()


def secret_open(stored: str) -> str:
    """The secret itself, for the request to the identity provider only; never for display."""
    if not stored:
        return ""
    if is_env_reference(stored):
        name = stored[len(ENV_PREFIX):]
        if not ENV_NAME.match(name) or name not in os.environ:
            raise SecretUnavailable(f"the environment variable {name} is not set on the server")
        return os.environ[name]
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable("the stored secret cannot be decrypted with the current SSO_SECRET_KEY") from None
