"""In-memory stand-ins for the OAuth ports (``handlers.oauth``): a scripted provider, the state and
login-code stores (single use, like the Redis ones)."""

from __future__ import annotations

from dataclasses import dataclass, field

from spendsense_auth.domain.accounts import AuthError, SignInResult, VerifiedIdentity
from spendsense_auth.domain.oauth import (
    OAuthProvider,
    PendingAuthorization,
    invalid_id_token,
    oauth_failed,
    provider_not_configured,
)
from spendsense_auth.handlers.oauth import LoginCodes, OAuthProviderClient, OAuthProviders, OAuthStates


@dataclass
class Exchange:
    code: str
    code_verifier: str
    nonce: str
    redirect_uri: str


class FakeProvider(OAuthProviderClient):
    """Codes map to identities; a code serves once (as at a real provider)."""

    def __init__(self, name: OAuthProvider, id_tokens: bool = False) -> None:
        self.name = name
        self._id_tokens = id_tokens
        self.codes: dict[str, VerifiedIdentity] = {}
        self.id_token_identities: dict[str, VerifiedIdentity] = {}
        self.exchanges: list[Exchange] = []
        self.fail_with: AuthError | None = None

    @property
    def accepts_id_tokens(self) -> bool:
        return self._id_tokens

    def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str:
        return f"https://{self.name}.example/authorize?state={state}&redirect_uri={redirect_uri}"

    def issue_code(self, identity: VerifiedIdentity, code: str | None = None) -> str:
        code = code or f"code-{len(self.codes) + len(self.exchanges)}"
        self.codes[code] = identity
        return code

    async def exchange_code(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> VerifiedIdentity:
        self.exchanges.append(Exchange(code, code_verifier, nonce, redirect_uri))
        if self.fail_with is not None:
            raise self.fail_with
        identity = self.codes.pop(code, None)
        if identity is None:
            raise oauth_failed(f"{self.name} refused the authorization code (invalid_grant)")
        return identity

    async def verify_id_token(self, id_token: str, nonce: str | None) -> VerifiedIdentity:
        identity = self.id_token_identities.get(id_token)
        if identity is None:
            raise invalid_id_token("the identity token is invalid")
        return identity


@dataclass
class FakeProviders(OAuthProviders):
    providers: dict[str, FakeProvider] = field(default_factory=dict)

    def get(self, provider: OAuthProvider) -> FakeProvider:
        if provider not in self.providers:
            raise provider_not_configured(provider)
        return self.providers[provider]


class InMemoryStates(OAuthStates):
    def __init__(self) -> None:
        self.items: dict[str, PendingAuthorization] = {}
        self.ttls: dict[str, int] = {}

    async def put(self, state: str, pending: PendingAuthorization, ttl_s: int) -> None:
        self.items[state], self.ttls[state] = pending, ttl_s

    async def take(self, state: str) -> PendingAuthorization | None:
        return self.items.pop(state, None)

    async def peek(self, state: str) -> PendingAuthorization | None:
        return self.items.get(state)


class InMemoryLoginCodes(LoginCodes):
    def __init__(self) -> None:
        self.items: dict[str, SignInResult] = {}

    async def put(self, code: str, result: SignInResult, ttl_s: int) -> None:
        self.items[code] = result

    async def take(self, code: str) -> SignInResult | None:
        return self.items.pop(code, None)
