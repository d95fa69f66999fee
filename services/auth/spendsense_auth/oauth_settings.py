"""The OAuth settings of the auth service (``AuthSettings`` inherits them; env prefix ``SPENDSENSE_``).

A provider is configured when both its client id and its client secret are set; the endpoint settings
default to the real provider's URLs and are overridden only to point at another (e.g. a local test)
server. Documented in ``.env.example``.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from spendsense_auth.domain.oauth import OAuthPolicy
from spendsense_shared.settings import ServiceSettings


class OAuthSettings(ServiceSettings):
    # Where the providers send users back: {base}/api/v1/auth/oauth/{provider}/callback (the public
    # URL of the gateway or of the auth service; register that callback URL at each provider).
    oauth_redirect_base_url: str = "http://localhost:8000"
    # Client-app URLs the callback may redirect to (with a one-time login code); JSON list.
    oauth_allowed_redirect_uris: list[str] = []
    oauth_timeout_s: float = Field(5.0, gt=0, description="Per request to a provider")
    oauth_state_ttl_s: int = Field(600, ge=30)
    oauth_login_code_ttl_s: int = Field(60, ge=5)

    oauth_google_client_id: str | None = None
    oauth_google_client_secret: SecretStr | None = None
    oauth_google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth_google_token_url: str = "https://oauth2.googleapis.com/token"
    oauth_google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    oauth_google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    oauth_google_issuer: str = "https://accounts.google.com"

    oauth_github_client_id: str | None = None
    oauth_github_client_secret: SecretStr | None = None
    oauth_github_authorize_url: str = "https://github.com/login/oauth/authorize"
    oauth_github_token_url: str = "https://github.com/login/oauth/access_token"
    oauth_github_userinfo_url: str = "https://api.github.com/user"  # and {userinfo_url}/emails

    oauth_facebook_client_id: str | None = None
    oauth_facebook_client_secret: SecretStr | None = None
    oauth_facebook_authorize_url: str = "https://www.facebook.com/v19.0/dialog/oauth"
    oauth_facebook_token_url: str = "https://graph.facebook.com/v19.0/oauth/access_token"
    oauth_facebook_userinfo_url: str = "https://graph.facebook.com/v19.0/me"

    # Apple: the client id is the Services ID (web) — identity tokens from the app must carry it as
    # ``aud``; the client secret is the ES256 client-secret JWT made from the team's .p8 key.
    oauth_apple_client_id: str | None = None
    oauth_apple_client_secret: SecretStr | None = None
    oauth_apple_authorize_url: str = "https://appleid.apple.com/auth/authorize"
    oauth_apple_token_url: str = "https://appleid.apple.com/auth/token"
    oauth_apple_jwks_url: str = "https://appleid.apple.com/auth/keys"
    oauth_apple_issuer: str = "https://appleid.apple.com"

    def oauth_policy(self) -> OAuthPolicy:
        return OAuthPolicy(
            redirect_base_url=self.oauth_redirect_base_url,
            allowed_client_redirects=tuple(self.oauth_allowed_redirect_uris),
            state_ttl_s=self.oauth_state_ttl_s,
            login_code_ttl_s=self.oauth_login_code_ttl_s,
        )
