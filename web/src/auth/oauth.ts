// Sign-in with an OAuth provider, the browser flow the auth API defines (services/auth/…/api/oauth.py):
//
//   GET /api/v1/auth/oauth/{provider}/authorize?redirect_uri=<this app's /signin/oauth/{provider}>
//     → 302 to the provider → the provider sends the browser back to the API's callback
//     → 302 to <redirect_uri>?login_code=<one-time code>  (or ?error=oauth_failed&reason=…)
//   POST /api/v1/auth/oauth/{provider}/token {"login_code"} → the token pair.
//
// The API has no list of configured providers. An unconfigured provider answers 503
// provider_not_configured to every call, before anything else, so the app asks each provider's token
// endpoint with a state that cannot exist: 400 invalid_state means configured (and nothing is created or
// used up); 503 means not configured. The redirect_uri must be on the auth service's allow-list
// (SPENDSENSE_OAUTH_ALLOWED_REDIRECT_URIS, e.g. ["https://app.example.com/signin/oauth/"]); a click checks
// that first and says so in words instead of leaving the app for an error page.
import { API, ApiError, errorFrom, NETWORK_ERROR_MESSAGE } from "../api/client";

export const PROVIDERS = ["google", "apple", "github", "facebook"] as const;
export type Provider = (typeof PROVIDERS)[number];

export const PROVIDER_NAMES: Record<Provider, string> = {
  google: "Google",
  apple: "Apple",
  github: "GitHub",
  facebook: "Facebook",
};

export function isProvider(name: string | undefined): name is Provider {
  return (PROVIDERS as readonly string[]).includes(name ?? "");
}

/** Where the provider's sign-in comes back to in this app. */
export function redirectUri(provider: Provider): string {
  return `${window.location.origin}/signin/oauth/${provider}`;
}

export function authorizeUrl(provider: Provider): string {
  const query = new URLSearchParams({ redirect_uri: redirectUri(provider) });
  return `${API}/auth/oauth/${provider}/authorize?${query.toString()}`;
}

const PROBE = { code: "configured?", state: "configured?" };

async function configured(provider: Provider): Promise<boolean> {
  try {
    const response = await fetch(`${API}/auth/oauth/${provider}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(PROBE),
    });
    if (response.status !== 400) {
      // Drain what is not read: an unread body keeps the browser's connection (six per host) busy.
      await response.body?.cancel().catch(() => undefined);
      return false;
    }
    const body = (await response.json().catch(() => null)) as { error?: { code?: string } } | null;
    return body?.error?.code === "invalid_state";
  } catch {
    return false;
  }
}

/** The providers the auth service has credentials for, in the order of PROVIDERS. */
export async function configuredProviders(): Promise<Provider[]> {
  const found = await Promise.all(PROVIDERS.map(async (p) => ((await configured(p)) ? p : null)));
  return found.filter((p): p is Provider => p !== null);
}

const FROM_KEY = "spendsense.oauth.from";

/** Leave for the provider, after checking the API will send the browser back here. */
export async function startOAuth(provider: Provider, from: string | null): Promise<void> {
  const url = authorizeUrl(provider);
  let response: Response;
  try {
    response = await fetch(url, { redirect: "manual", headers: { Accept: "application/json" } });
  } catch {
    throw new ApiError(0, "network_error", NETWORK_ERROR_MESSAGE);
  }
  // A redirect (to the provider) is opaque to a script: that is the answer hoped for.
  if (response.type !== "opaqueredirect" && !(response.status >= 300 && response.status < 400)) {
    throw await errorFrom(response);
  }
  try {
    if (from) sessionStorage.setItem(FROM_KEY, from);
    else sessionStorage.removeItem(FROM_KEY);
  } catch {
    // Storage refused: the sign-in still works, it just lands on the start page.
  }
  window.location.assign(url);
}

/** Where sign-in was asked for before leaving for the provider (read once). */
export function takeOAuthFrom(): string | null {
  try {
    const from = sessionStorage.getItem(FROM_KEY);
    sessionStorage.removeItem(FROM_KEY);
    return from;
  } catch {
    return null;
  }
}
