"""A real OAuth2 authorization server for tests, built with Authlib's server side.

It plays Google's or Microsoft's part: a consent page, a token endpoint (authorization code
with PKCE, refresh token) and the token introspection endpoint Dovecot's oauth2 passdb asks
whether a token is active and whose it is. It runs in a thread on a free port:

    with OAuthServer() as auth:
        auth.add_client("app-id", "app-secret", "http://localhost/accounts/oauth/google/callback")
        DovecotServer(oauth2=auth.introspection_url)

Its clock can be moved ahead (``advance``) to expire every token it issued, and a user's
grants revoked (``revoke``), as a provider does when the user removes the app's access.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.models import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, request
from markupsafe import escape
from werkzeug.serving import WSGIRequestHandler, make_server

SCOPES = {
    "https://mail.google.com/",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "offline_access",
}
DOVECOT_ID, DOVECOT_SECRET = "dovecot", "dovecot-introspection-secret"


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class Token(TokenMixin):
    server: OAuthServer = field(repr=False)
    client_id: str
    user: str
    scope: str
    access_token: str
    refresh_token: str | None
    expires_in: int
    issued_at: float
    revoked: bool = False

    def check_client(self, client):
        return client.client_id == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return self.server.now() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return self.server.clients[self.client_id]


class OAuthServer:
    """Authorization, token and introspection endpoints on 127.0.0.1:``port``."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime  # seconds an access token lives
        self.offset = 0.0
        self.clients: dict[str, Client] = {DOVECOT_ID: Client(DOVECOT_ID, DOVECOT_SECRET, [])}
        self.codes: dict[str, Code] = {}
        self.tokens: list[Token] = []
        self.introspections: list[tuple[str, bool]] = []  # (token, active) as Dovecot asked
        self.refreshes = 0
        self.app = self._build_app()
        self._http = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.port = self._http.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.authorize_url, self.token_url = f"{self.url}/authorize", f"{self.url}/token"
        self.introspection_url = (
            f"http://{DOVECOT_ID}:{DOVECOT_SECRET}@127.0.0.1:{self.port}/introspect"
        )
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move this server's clock: tokens it issued expire as it sees them, not as clients do."""
        self.offset += seconds

    def revoke(self, user: str) -> None:
        """Remove the app's access for ``user``: every token and refresh token stops working."""
        for token in self.tokens:
            if token.user == user:
                token.revoked = True

    def add_client(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.clients[client_id] = Client(client_id, secret, [redirect_uri])

    def active_tokens(self, user: str) -> list[str]:
        return [
            t.access_token
            for t in self.tokens
            if t.user == user and not t.is_expired() and not t.revoked
        ]

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        server = AuthorizationServer(app, query_client=self.clients.get, save_token=self._save)
        server.register_token_generator(
            "default",
            BearerTokenGenerator(
                _random(42), _random(48), lambda client, grant_type: self.lifetime
            ),
        )
        owner = self

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                owner.codes[code] = Code(
                    code,
                    req.client.client_id,
                    req.payload.redirect_uri,
                    req.scope,
                    req.user,
                    req.payload.data.get("code_challenge"),
                    req.payload.data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code, client):
                found = owner.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                owner.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotate, as Microsoft does

            def authenticate_refresh_token(self, refresh_token):
                return next(
                    (t for t in owner.tokens if t.refresh_token == refresh_token and not t.revoked),
                    None,
                )

            def authenticate_user(self, refresh_token):
                owner.refreshes += 1
                return refresh_token.user

            def revoke_old_credential(self, refresh_token):
                refresh_token.refresh_token = None  # the rotated one replaces it

        class Introspection(IntrospectionEndpoint):
            def query_token(self, token_string, token_type_hint):
                return next((t for t in owner.tokens if t.access_token == token_string), None)

            def check_permission(self, token, client, req):
                return client.client_id == DOVECOT_ID

            def create_introspection_payload(self, token):
                payload = super().create_introspection_payload(token)
                owner.introspections.append((request.form.get("token", ""), payload["active"]))
                return payload

            def introspect_token(self, token):
                return {
                    "active": True,
                    "username": token.user,
                    "scope": token.scope,
                    "client_id": token.client_id,
                    "token_type": "Bearer",
                    "exp": int(token.issued_at + token.expires_in),
                }

        server.register_grant(CodeGrant, [CodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        server.register_endpoint(Introspection)

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            user = request.form.get("username", "")
            try:
                grant = server.get_consent_grant(end_user=user or None)
            except OAuth2Error as error:
                return f"invalid request: {escape(error.error)}", 400
            if request.method == "GET":
                return CONSENT.format(client=escape(grant.client.client_id))
            allowed = request.form.get("confirm") == "yes" and user
            return server.create_authorization_response(
                grant=grant, grant_user=user if allowed else None
            )

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.post("/introspect")
        def introspect():
            return server.create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)

        return app

    def _save(self, token: dict, req) -> None:
        self.tokens.append(
            Token(
                self,
                req.client.client_id,
                req.user,
                token.get("scope", ""),
                token["access_token"],
                token.get("refresh_token"),
                token["expires_in"],
                self.now(),
            )
        )

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> OAuthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args) -> None:  # one line per request would drown the test output
        pass


def _random(length: int):
    from authlib.common.security import generate_token

    return lambda *args, **kwargs: generate_token(length)


CONSENT = """<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>Permitir acceso</title></head><body>
<h1>{client} quiere leer su correo</h1>
<form method="post">
  <label>Usuario <input name="username" id="username" autocomplete="off"></label>
  <button type="submit" name="confirm" value="yes">Permitir</button>
  <button type="submit" name="confirm" value="no">Denegar</button>
</form></body></html>
"""
