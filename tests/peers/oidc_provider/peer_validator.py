"""The test provider's claims, and its deliberate faults (set by the test through /control/):

- ``tamper``: the id_token's payload is changed after signing (groups become ``platform-admins``);
- ``wrong_audience``: the id_token is issued for another client;
- ``expired``: the id_token expired an hour ago;
- ``stale_nonce``: the id_token carries the nonce of the previous sign-in (a replayed token);
- ``userinfo_other_subject``: the userinfo endpoint answers about another subject.
"""

import base64
import json
import time

from django.conf import settings
from oauth2_provider.oauth2_validators import OAuth2Validator


def current_mode() -> str:
    path = settings.DATA_DIR / "mode"
    return path.read_text().strip() if path.exists() else ""


def _nonces_path():
    return settings.DATA_DIR / "nonces.json"


class PeerValidator(OAuth2Validator):
    oidc_claim_scope = None  # every claim below goes in, groups included

    def get_additional_claims(self, request):
        user = request.user
        return {"email": user.email, "email_verified": True, "given_name": user.first_name,
                "family_name": user.last_name, "preferred_username": user.username,
                "groups": sorted(user.groups.values_list("name", flat=True))}

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        mode = current_mode()
        nonces = json.loads(_nonces_path().read_text()) if _nonces_path().exists() else []
        if request.nonce:
            _nonces_path().write_text(json.dumps([*nonces, request.nonce][-20:]))
        if mode == "wrong_audience":
            claims["aud"] = "another-application"
        elif mode == "expired":
            claims["exp"] = int(time.time()) - 3600
            claims["iat"] = int(time.time()) - 7200
        elif mode == "stale_nonce" and nonces:
            claims["nonce"] = nonces[-1]
        return claims, expiration_time

    def get_userinfo_claims(self, request):
        claims = super().get_userinfo_claims(request)
        if current_mode() == "userinfo_other_subject":
            claims["sub"] = "someone-else"
        return claims

    def finalize_id_token(self, id_token, token, token_handler, request):
        serialized = super().finalize_id_token(id_token, token, token_handler, request)
        if current_mode() != "tamper":
            return serialized
        header, payload, signature = serialized.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["groups"] = ["platform-admins"]
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{payload}.{signature}"
