// The signed-in session. The access token lives only in memory (this module); the refresh token is
// kept in sessionStorage (this tab only, gone when the tab closes) so a reload can sign the tab back
// in. Refresh tokens rotate on every use and reusing an old one revokes the whole family, so at most
// one refresh is ever in flight.
import { useSyncExternalStore } from "react";
import type { TokenResponse } from "../api/types";

export interface Session {
  accessToken: string;
  userId: string;
  email: string | null;
  roles: string[];
  expiresAt: number; // epoch ms
}

export type AuthState =
  | { status: "restoring" }
  | { status: "signed_out"; notice?: string }
  | { status: "signed_in"; session: Session };

const REFRESH_KEY = "spendsense.refresh_token";
const REFRESH_MARGIN_S = 60;

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

function storedRefreshToken(): string | null {
  return storage()?.getItem(REFRESH_KEY) ?? null;
}

function storeRefreshToken(token: string | null): void {
  const store = storage();
  if (!store) return;
  if (token) store.setItem(REFRESH_KEY, token);
  else store.removeItem(REFRESH_KEY);
}

let state: AuthState = storedRefreshToken() ? { status: "restoring" } : { status: "signed_out" };
const listeners = new Set<() => void>();
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<Session | null> | null = null;

function setState(next: AuthState): void {
  state = next;
  listeners.forEach((listener) => listener());
}

export function getAuthState(): AuthState {
  return state;
}

export function currentSession(): Session | null {
  return state.status === "signed_in" ? state.session : null;
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useAuth(): AuthState {
  return useSyncExternalStore(subscribe, getAuthState);
}

interface Claims {
  sub?: string;
  roles?: unknown;
  exp?: number;
}

/** The JWT's payload, unverified: the API verifies every token; the app only reads who and which roles. */
export function decodeClaims(token: string): Claims {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const json = decodeURIComponent(
      Array.from(atob(base64), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const value: unknown = JSON.parse(json);
    return typeof value === "object" && value !== null ? (value as Claims) : {};
  } catch {
    return {};
  }
}

export const ROLE_RANK: Record<string, number> = { user: 1, operator: 2, admin: 3 };

/** Roles are ordered (user < operator < admin): a higher role includes the lower ones. */
export function hasRole(session: Session | null, role: "user" | "operator" | "admin"): boolean {
  if (!session) return false;
  const best = Math.max(1, ...session.roles.map((r) => ROLE_RANK[r] ?? 0));
  return best >= (ROLE_RANK[role] ?? 99);
}

function schedule(expiresInS: number): void {
  if (refreshTimer !== undefined) clearTimeout(refreshTimer);
  const delay = Math.max(5, expiresInS - REFRESH_MARGIN_S) * 1000;
  refreshTimer = setTimeout(() => void refreshSession(), delay);
}

/** Take a token response (sign-up, sign-in or refresh): the session is now signed in. */
export function acceptTokens(tokens: TokenResponse): Session {
  const claims = decodeClaims(tokens.access_token);
  const roles = Array.isArray(claims.roles)
    ? claims.roles.filter((r): r is string => typeof r === "string")
    : tokens.user.roles;
  const session: Session = {
    accessToken: tokens.access_token,
    userId: typeof claims.sub === "string" ? claims.sub : tokens.user.id,
    email: tokens.user.email,
    roles,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  };
  storeRefreshToken(tokens.refresh_token);
  schedule(tokens.expires_in);
  setState({ status: "signed_in", session });
  return session;
}

/** Forget the session locally (after sign-out, erasure, or a refresh the API refused). */
export function clearSession(notice?: string): void {
  if (refreshTimer !== undefined) clearTimeout(refreshTimer);
  refreshTimer = undefined;
  storeRefreshToken(null);
  setState(notice ? { status: "signed_out", notice } : { status: "signed_out" });
}

/** Rotate the refresh token for a new access token; one rotation at a time. */
export function refreshSession(): Promise<Session | null> {
  if (inflight) return inflight;
  const token = storedRefreshToken();
  if (!token) {
    if (state.status !== "signed_out") clearSession();
    return Promise.resolve(null);
  }
  inflight = (async () => {
    try {
      const response = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      });
      if (response.ok) return acceptTokens((await response.json()) as TokenResponse);
      if (response.status === 401 || response.status === 422) {
        clearSession("Your session has ended. Please sign in again.");
      } else {
        // The API is unavailable: keep the refresh token so a later try (or a reload) can use it.
        if (refreshTimer !== undefined) clearTimeout(refreshTimer);
        setState({
          status: "signed_out",
          notice: `SpendSense could not renew your session (the server answered ${response.status}). Try again in a moment.`,
        });
      }
      return null;
    } catch {
      setState({
        status: "signed_out",
        notice: "SpendSense could not be reached to renew your session. Check your connection and reload.",
      });
      return null;
    } finally {
      inflight = null;
    }
  })();
  return inflight;
}

/** Sign out: revoke the access token and the session at the API, then forget both tokens. */
export async function signOut(): Promise<void> {
  const session = currentSession();
  const refreshToken = storedRefreshToken();
  clearSession();
  if (!session) return;
  try {
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${session.accessToken}` },
      body: JSON.stringify(refreshToken ? { refresh_token: refreshToken } : {}),
    });
  } catch {
    // Signed out here either way; the access token expires within the hour.
  }
}

/** The signed-in session, for pages behind RequireRole (which renders them only when signed in). */
export function useSession(): Session {
  const auth = useAuth();
  if (auth.status !== "signed_in") throw new Error("useSession outside a signed-in route");
  return auth.session;
}
