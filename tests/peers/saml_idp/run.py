"""A real SAML 2.0 identity provider for the SSO tests: pysaml2's ``saml2.server.Server`` in a
small WSGI app, run as a process of its own on 127.0.0.1 (``python tests/peers/saml_idp/run.py
PORT DIR``; DIR holds the key pair the test generated, and the control token).

- ``GET /metadata`` — its metadata (entity id, single sign-on service, signing certificate).
- ``GET /sso/redirect?SAMLRequest=...&RelayState=...`` — parses the platform's AuthnRequest
  (the platform must be in its metadata: see /control/) and shows its own login page.
- ``POST /login`` — checks the person's password and answers with an auto-posting form that
  carries the signed assertion (NameID persistent, attributes eduPersonAffiliation, mail,
  givenName, sn, uid) to the platform's AssertionConsumerService.
- ``POST /control/`` (JSON, header X-Peer-Token) — ``users`` to add, ``sp_metadata`` (the
  platform's metadata XML) to trust, ``mode`` for the next answers: '' (honest), 'tamper'
  (an attribute changed after signing), 'wrong_audience' (issued for another SP entity id),
  'expired' (valid for one second, handed over three seconds later).
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server

OTHER_SP = "https://another-service.example/saml/metadata"


class Idp:
    def __init__(self, port: int, folder: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.folder = folder
        self.token = (folder / "control-token").read_text().strip()
        self.users: dict[str, dict] = {}
        self.sp_metadata: list[str] = []
        self.mode = ""
        self.pending: dict[str, dict] = {}
        self.server = self._server()

    def _server(self, lifetime_seconds: int = 300) -> Server:
        config = {
            "entityid": f"{self.base}/metadata",
            "service": {"idp": {
                "name": "Campus SAML IdP",
                "endpoints": {"single_sign_on_service": [(f"{self.base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                "policy": {"default": {"lifetime": {"seconds": lifetime_seconds}, "attribute_restrictions": None,
                                       "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                                       "entity_categories": []}},
                "want_authn_requests_signed": False,
            }},
            "key_file": str(self.folder / "idp.key"),
            "cert_file": str(self.folder / "idp.crt"),
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"inline": list(self.sp_metadata)},
        }
        idp_config = IdPConfig()
        idp_config.load(config)
        return Server(config=idp_config)

    # --- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        try:
            if path == "/metadata":
                from saml2.metadata import create_metadata_string

                body = create_metadata_string(None, config=self.server.config, valid=4)
                return self._answer(start_response, body, "application/samlmetadata+xml")
            if path == "/sso/redirect" and method == "GET":
                return self._login_page(start_response, parse_qs(environ.get("QUERY_STRING", "")))
            if path == "/login" and method == "POST":
                return self._login(start_response, self._form(environ))
            if path == "/control/" and method == "POST":
                return self._control(start_response, environ)
        except Exception as exc:  # a peer's bad day shows as a 400 with the reason
            return self._answer(start_response, f"<p>IdP error: {html.escape(repr(exc))}</p>", status="400 Bad Request")
        return self._answer(start_response, "not found", status="404 Not Found")

    @staticmethod
    def _form(environ) -> dict[str, str]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        data = parse_qs(environ["wsgi.input"].read(size).decode())
        return {key: values[0] for key, values in data.items()}

    @staticmethod
    def _answer(start_response, body, content_type="text/html; charset=utf-8", status="200 OK"):
        payload = body.encode() if isinstance(body, str) else body
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
        return [payload]

    def _control(self, start_response, environ):
        if environ.get("HTTP_X_PEER_TOKEN") != self.token:
            return self._answer(start_response, "forbidden", status="403 Forbidden")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        for user in body.get("users", []):
            self.users[user["username"]] = user
        if "sp_metadata" in body:
            xml = body["sp_metadata"]
            # The same service under another entity id: what 'wrong_audience' answers are issued for.
            entity_id = xml.split('entityID="', 1)[1].split('"', 1)[0]
            self.sp_metadata += [xml, xml.replace(f'entityID="{entity_id}"', f'entityID="{OTHER_SP}"')]
        if "mode" in body:
            self.mode = body["mode"]
        self.server = self._server(lifetime_seconds=1 if self.mode == "expired" else 300)
        return self._answer(start_response, "{}", "application/json")

    def _login_page(self, start_response, query):
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        message = request.message
        key = secrets.token_urlsafe(16)
        self.pending[key] = {"id": message.id, "sp": message.issuer.text,
                             "acs": message.assertion_consumer_service_url,
                             "relay_state": query.get("RelayState", [""])[0]}
        page = f"""<!doctype html><html><head><title>Campus SAML IdP: sign in</title></head><body>
<h1>Campus SAML IdP</h1><p>Sign in to continue to {html.escape(message.issuer.text)}.</p>
<form method="post" action="/login"><input type="hidden" name="key" value="{key}">
<label for="u">Campus username</label> <input id="u" name="username">
<label for="p">Campus password</label> <input id="p" name="password" type="password">
<button type="submit">Sign in at the campus</button></form></body></html>"""
        return self._answer(start_response, page)

    def _login(self, start_response, form):
        pending = self.pending.pop(form.get("key", ""), None)
        user = self.users.get(form.get("username", ""))
        if pending is None:
            return self._answer(start_response, "<p>Unknown or used login request.</p>", status="400 Bad Request")
        if user is None or user["password"] != form.get("password"):
            return self._answer(start_response, "<p>Wrong campus username or password.</p>", status="401 Unauthorized")
        identity = {"eduPersonAffiliation": user.get("affiliations", []), "mail": [user["email"]],
                    "givenName": [user.get("first_name", "")], "sn": [user.get("last_name", "")],
                    "uid": [user["username"]]}
        audience = OTHER_SP if self.mode == "wrong_audience" else pending["sp"]
        name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, sp_name_qualifier=audience,
                         name_qualifier=self.server.config.entityid, text=user.get("subject") or user["username"])
        response = str(self.server.create_authn_response(
            identity, in_response_to=pending["id"], destination=pending["acs"], sp_entity_id=audience,
            name_id=name_id, sign_assertion=True, sign_response=False,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}))
        if self.mode == "tamper":  # after signing: what an attacker on the way would do
            for value in user.get("affiliations", []):
                response = response.replace(f">{value}<", ">faculty<")
            response = response.replace(f">{user['email']}<", ">someone.else@campus.example<")
        if self.mode == "expired":
            time.sleep(3)
        encoded = base64.b64encode(response.encode()).decode()
        page = f"""<!doctype html><html><head><title>Campus SAML IdP: continue</title></head><body>
<p>Signed in at the campus.</p>
<form method="post" action="{html.escape(pending['acs'])}" id="to-sp">
<input type="hidden" name="SAMLResponse" value="{encoded}">
<input type="hidden" name="RelayState" value="{html.escape(pending['relay_state'])}">
<button type="submit">Continue to the service</button></form></body></html>"""
        return self._answer(start_response, page)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("saml-idp: " + (format % args) + "\n")


def main() -> None:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    app = Idp(port, folder)
    with make_server("127.0.0.1", port, app, handler_class=QuietHandler) as server:
        (folder / "ready").write_text("1")
        server.serve_forever()


if __name__ == "__main__":
    main()
