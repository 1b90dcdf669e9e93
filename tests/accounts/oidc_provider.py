"""A tiny OpenID Connect provider on loopback, for end-to-end sign-in tests over real HTTP.

It serves discovery, an authorize endpoint that immediately redirects back with
a code (the "user" has already consented), a token endpoint that checks the
client secret, redirect URI and PKCE verifier and returns an RS256-signed
id_token, userinfo, and the JWKS. ``identity`` is who the next sign-in will be.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class OIDCProvider:
    def __init__(self, *, client_id: str = "smsportal-test", client_secret: str = "s3cret") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        self.identity: dict = {"sub": "user-1", "email": "dana@example.com", "email_verified": True, "name": "Dana"}
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.requests: list[str] = []  # "METHOD /path", in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OIDCProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def id_token(self, claims: dict, nonce: str | None) -> str:
        now = int(time.time())
        payload = {**claims, "iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300}
        if nonce:
            payload["nonce"] = nonce
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})

    # --- HTTP -------------------------------------------------------------------

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                provider.requests.append(f"GET {url.path}")
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, provider.discovery())
                if url.path == "/jwks":
                    return self._json(200, provider.jwks())
                if url.path == "/authorize":
                    return self._authorize(query)
                if url.path == "/userinfo":
                    auth = self.headers.get("Authorization", "")
                    grant = provider.access_tokens.get(auth.removeprefix("Bearer "))
                    if grant is None:
                        return self._json(401, {"error": "invalid_token"})
                    return self._json(200, grant["claims"])
                return self._json(404, {"error": "not_found"})

            def _authorize(self, query: dict) -> None:
                if query.get("client_id") != provider.client_id or query.get("response_type") != "code":
                    return self._json(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {
                    "redirect_uri": query["redirect_uri"],
                    "claims": dict(provider.identity),
                    "nonce": query.get("nonce"),
                    "code_challenge": query.get("code_challenge"),
                }
                target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                url = urlparse(self.path)
                provider.requests.append(f"POST {url.path}")
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path != "/token":
                    return self._json(404, {"error": "not_found"})
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
                if (client_id, client_secret) != (provider.client_id, provider.client_secret):
                    return self._json(401, {"error": "invalid_client"})
                grant = provider.codes.pop(form.get("code", ""), None)
                if grant is None or form.get("grant_type") != "authorization_code":
                    return self._json(400, {"error": "invalid_grant"})
                if form.get("redirect_uri") != grant["redirect_uri"]:
                    return self._json(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
                if grant["code_challenge"]:
                    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["code_challenge"]:
                        return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                access = secrets.token_urlsafe(24)
                provider.access_tokens[access] = grant
                return self._json(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "id_token": provider.id_token(grant["claims"], grant["nonce"]),
                    },
                )

        return Handler
