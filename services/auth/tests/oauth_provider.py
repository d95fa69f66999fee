"""Real local OAuth providers for the auth service's tests: one HTTP server (Starlette + uvicorn in a
background thread, on a free port) that plays

* a Google-like OIDC provider (``/google/...``): authorize (auto-approves the configured test user),
  token (authorization code + PKCE S256, id_token signed RS256), userinfo, JWKS, discovery;
* an Apple-like OIDC issuer (``/apple/...``): the same code flow answered with ``response_mode=
  form_post`` (an auto-submitting HTML form), its JWKS, and ``sign_id_token`` for identity tokens with
  any ``aud``/``iss``/``exp`` a test wants;
* a GitHub-like OAuth2 provider (``/github/...``): token + ``/user`` + ``/user/emails``;
* a Facebook-like one (``/facebook/...``): token + Graph ``/me``.

The protocol is authlib's own server side: ``authlib.oauth2.rfc6749.AuthorizationServer`` with the
``AuthorizationCodeGrant``, ``rfc7636.CodeChallenge`` (PKCE required) and ``oidc.core.OpenIDCode``;
keys and identity tokens are joserfc's. A code is single use (a replay answers ``invalid_grant``).

Knobs per provider: ``user`` (who "signs in"), ``token_status`` (answer the token endpoint with that
HTTP status), ``token_delay_s``, ``id_token_audience`` (issue id_tokens for another client).
``provider.settings()`` gives the auth service's setting overrides pointing at this server.

Loaded by path from the tests (``tests/integration/conftest.py``).
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, UserInfo
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from spendsense_shared.embedded.servers import free_port

Kind = Literal["oidc", "github", "facebook"]


@dataclass
class TestUser:
    sub: str
    email: str | None = None
    email_verified: bool = True
    name: str | None = None

    __test__ = False  # not a pytest class


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri.startswith(("http://", "https://"))

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: TestUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return ""

    def get_amr(self) -> list[str]:
        return []


class _Request(OAuth2Request):
    def __init__(
        self, method: str, uri: str, headers: dict[str, str], query: dict[str, str], form: dict[str, str]
    ):
        super().__init__(method, uri, headers=headers)
        self._query, self._form = query, form
        self.payload = BasicOAuth2Payload({**query, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class LocalProvider:
    """One provider of the server: its client, its signing key, its codes and tokens."""

    def __init__(self, name: str, kind: Kind, base_url: str):
        self.name, self.kind = name, kind
        self.base_url = f"{base_url}/{name}"
        self.issuer = self.base_url
        self.client = Client(
            client_id=f"{name}-client-{uuid.uuid4().hex[:6]}", client_secret=generate_token(32)
        )
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": f"{name}-key-1", "alg": "RS256", "use": "sig"}
        )
        self.user = TestUser(sub=f"{name}-user-1", email=f"someone@{name}.example", name="Some One")
        self.emails: list[dict[str, Any]] | None = (
            None  # GitHub's /user/emails; default: the user's, verified
        )
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, TestUser] = {}
        self.token_status: int | None = None
        self.token_delay_s = 0.0
        self.id_token_audience: str | None = None
        self.token_requests = 0
        self.server = self._authorization_server()

    # -- what tests use ------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The auth service's setting overrides that point it at this provider."""
        prefix = f"oauth_{self.name}_"
        values: dict[str, Any] = {
            prefix + "client_id": self.client.client_id,
            prefix + "client_secret": self.client.client_secret,
            prefix + "authorize_url": f"{self.base_url}/authorize",
            prefix + "token_url": f"{self.base_url}/token",
        }
        if self.kind == "oidc":
            values[prefix + "jwks_url"] = f"{self.base_url}/jwks"
            values[prefix + "issuer"] = self.issuer
            if self.name != "apple":
                values[prefix + "userinfo_url"] = f"{self.base_url}/userinfo"
        elif self.kind == "github":
            values[prefix + "userinfo_url"] = f"{self.base_url}/user"
        else:
            values[prefix + "userinfo_url"] = f"{self.base_url}/me"
        return values

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.key]).as_dict(private=False))

    def sign_id_token(
        self,
        user: TestUser | None = None,
        *,
        aud: str | None = None,
        iss: str | None = None,
        expires_in: int = 600,
        nonce: str | None = None,
        key: RSAKey | None = None,
        **claims: Any,
    ) -> str:
        """An identity token as this issuer signs it (another ``key`` forges one)."""
        user = user or self.user
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": iss or self.issuer,
            "aud": aud or self.client.client_id,
            "sub": user.sub,
            "iat": now,
            "exp": now + expires_in,
            "auth_time": now,
        }
        if user.email:
            body |= {"email": user.email, "email_verified": "true" if user.email_verified else "false"}
        if nonce:
            body["nonce"] = nonce
        body |= claims
        signer = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signer.kid or self.key.kid}, body, signer)

    def reset(self) -> None:
        self.user = TestUser(sub=f"{self.name}-user-1", email=f"someone@{self.name}.example", name="Some One")
        self.emails, self.token_status, self.token_delay_s, self.id_token_audience = None, None, 0.0, None
        self.token_requests = 0

    # -- authlib's server side -----------------------------------------------------------------------

    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):
            def query_client(self, client_id: str) -> Client | None:
                return provider.client if client_id == provider.client.client_id else None

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                provider.tokens[token["access_token"]] = request.user

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request

            def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
                return status, body, headers

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                return None

        class CodeGrant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                provider.codes[code] = AuthCode(
                    code=code,
                    client_id=request.client.client_id,
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=request.scope or "",
                    user=request.user,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
                found = provider.codes.get(code)
                return found if found is not None and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: AuthCode) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: AuthCode) -> TestUser:
                return authorization_code.user

        class IdTokens(OpenIDCode):
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return False

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": str(provider.key.kid)}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [provider.id_token_audience or client.client_id]}

            def generate_user_info(self, user: TestUser, scope: str) -> UserInfo:
                info = UserInfo(sub=user.sub, name=user.name)
                if user.email and "email" in scope.split():
                    info |= {"email": user.email, "email_verified": user.email_verified}
                return info

        class AppleIdTokens(IdTokens):
            # Apple answers an identity token whatever the scope ("name email", no "openid").
            def process_token(self, grant: Any, response: Any) -> Any:
                _, token, _ = response
                token["id_token"] = self.encode_id_token(token, grant.request)
                return token

        server = Server()
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda client, grant_type, user, scope: generate_token(42))
        )
        extensions: list[Any] = [CodeChallenge(required=True)]
        if self.kind == "oidc":
            extensions.append(AppleIdTokens() if self.name == "apple" else IdTokens(require_nonce=False))
        server.register_grant(CodeGrant, extensions)
        return server

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _request(self, request: Request) -> _Request:
        form = {k: str(v) for k, v in (await request.form()).items()} if request.method == "POST" else {}
        return _Request(
            request.method, str(request.url), dict(request.headers), dict(request.query_params), form
        )

    @staticmethod
    def _response(status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=headers)
        return Response(body or "", status_code=status, headers=headers)

    async def authorize(self, request: Request) -> Response:
        oauth_request = await self._request(request)
        grant = self.server.get_consent_grant(oauth_request, end_user=self.user)
        status, body, headers = self.server.create_authorization_response(
            oauth_request, grant_user=self.user, grant=grant
        )
        location = dict(headers or []).get("Location")
        if oauth_request.payload.data.get("response_mode") == "form_post" and location:
            # Apple: the browser posts code and state to the redirect_uri.
            target = urlsplit(location)
            action = target._replace(query="").geturl()
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in parse_qsl(target.query)
            )
            page = f'<form method="post" action="{html.escape(action)}">{inputs}</form>'
            return HTMLResponse(f"<html><body onload='document.forms[0].submit()'>{page}</body></html>")
        return self._response(status, body, headers)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        if self.token_delay_s:
            await asyncio.sleep(self.token_delay_s)
        if self.token_status is not None:
            return JSONResponse({"error": "server_error"}, status_code=self.token_status)
        return self._response(*self.server.create_token_response(await self._request(request)))

    def _bearer_user(self, request: Request) -> TestUser | None:
        auth = request.headers.get("authorization", "")
        return self.tokens.get(auth[7:]) if auth.lower().startswith("bearer ") else None

    async def userinfo(self, request: Request) -> Response:
        user = self._bearer_user(request)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        info: dict[str, Any] = {"sub": user.sub, "name": user.name}
        if user.email:
            info |= {"email": user.email, "email_verified": user.email_verified}
        return JSONResponse(info)

    async def github_user(self, request: Request) -> Response:
        user = self._bearer_user(request)
        if user is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(
            {
                "id": int(user.sub) if user.sub.isdigit() else user.sub,
                "login": user.name,
                "name": user.name,
                "email": None,
            }
        )

    async def github_emails(self, request: Request) -> Response:
        user = self._bearer_user(request)
        if user is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        if self.emails is not None:
            return JSONResponse(self.emails)
        emails = [{"email": user.email, "primary": True, "verified": user.email_verified, "visibility": None}]
        return JSONResponse(emails if user.email else [])

    async def facebook_me(self, request: Request) -> Response:
        user = self._bearer_user(request)
        if user is None:
            return JSONResponse(
                {"error": {"message": "Invalid OAuth access token", "code": 190}}, status_code=401
            )
        fields = request.query_params.get("fields", "id,name").split(",")
        me = {"id": user.sub, "name": user.name, "email": user.email}
        return JSONResponse({k: v for k, v in me.items() if k in fields and v is not None})

    async def jwks_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.jwks())

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "userinfo_endpoint": f"{self.base_url}/userinfo",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def routes(self) -> list[Route]:
        p = f"/{self.name}"
        routes = [
            Route(f"{p}/authorize", self.authorize, methods=["GET"]),
            Route(f"{p}/token", self.token, methods=["POST"]),
        ]
        if self.kind == "oidc":
            routes += [
                Route(f"{p}/userinfo", self.userinfo, methods=["GET"]),
                Route(f"{p}/jwks", self.jwks_endpoint, methods=["GET"]),
                Route(f"{p}/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            ]
        elif self.kind == "github":
            routes += [
                Route(f"{p}/user", self.github_user, methods=["GET"]),
                Route(f"{p}/user/emails", self.github_emails, methods=["GET"]),
            ]
        else:
            routes.append(Route(f"{p}/me", self.facebook_me, methods=["GET"]))
        return routes


class LocalProviders:
    """``with LocalProviders() as providers:`` → ``providers.google``, ``.github``, ``.facebook``,
    ``.apple``; ``providers.settings()`` points the auth service at all of them."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.google = LocalProvider("google", "oidc", self.base_url)
        self.apple = LocalProvider("apple", "oidc", self.base_url)
        self.github = LocalProvider("github", "github", self.base_url)
        self.facebook = LocalProvider("facebook", "facebook", self.base_url)
        self.github.user = TestUser(sub="4242", email="someone@github.example", name="octo")
        routes = [r for p in self.all for r in p.routes()]
        self._server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=routes),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="oauth-providers", daemon=True)

    @property
    def all(self) -> list[LocalProvider]:
        return [self.google, self.apple, self.github, self.facebook]

    def settings(self, *names: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for provider in self.all:
            if not names or provider.name in names:
                values |= provider.settings()
        return values

    def reset(self) -> None:
        for provider in self.all:
            provider.reset()
        self.github.user = TestUser(sub="4242", email="someone@github.example", name="octo")

    def start(self) -> LocalProviders:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the local OAuth providers did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LocalProviders:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
