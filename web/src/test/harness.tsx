// What the component tests share: the API stubbed at the network edge (fetch, and XMLHttpRequest for the
// upload's progress), a signed-in session made from a fake token, and a page rendered inside a memory
// router and its own QueryClient. Only test files import this; the app never does.
import { cleanup, render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes, useLocation, type Location } from "react-router-dom";
import { afterEach, beforeEach, vi } from "vitest";
import type { TokenResponse } from "../api/types";
import { acceptTokens, clearSession } from "../auth/session";
import { RequireRole } from "../components/Layout";

/** One request the app made, as the API would receive it (the path without /api/v1 and query). */
export interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: Record<string, string>;
}

export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler = Reply | ((call: Call) => Reply | Promise<Reply>);

/** The API's error body (SPEC §9): `{"error": {"code", "message", "details"?}}`. */
export function apiError(status: number, code: string, message: string, details?: unknown): Reply {
  return { status, body: { error: details === undefined ? { code, message } : { code, message, details } } };
}

const PREFIX = "/api/v1";

/** An upload in flight (XMLHttpRequest): the test reports its progress and answers it. */
export class PendingUpload {
  readonly headers: Record<string, string> = {};
  method = "";
  url = "";
  status = 0;
  responseType = "";
  responseText = "";
  body: FormData | null = null;
  readonly upload: { onprogress: ((event: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } =
    { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;

  constructor(private readonly api: FakeApi) {}

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  getResponseHeader(): string | null {
    return null;
  }

  send(body: FormData): void {
    this.body = body;
    this.api.uploads.push(this);
  }

  abort(): void {
    this.onabort?.();
  }

  /** The file the app sent (the multipart field `file`). */
  get file(): File | null {
    const value = this.body?.get("file");
    return value instanceof File ? value : null;
  }

  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total });
  }

  respond(reply: Reply): void {
    this.status = reply.status ?? 200;
    this.responseText = reply.body === undefined ? "" : JSON.stringify(reply.body);
    this.onload?.();
  }
}

/** The API as the tests describe it: `on("POST /auth/login", reply)`; anything else is a test failure. */
export class FakeApi {
  readonly calls: Call[] = [];
  readonly uploads: PendingUpload[] = [];
  readonly unexpected: string[] = [];
  private readonly routes = new Map<string, Handler>();

  /** Answer `METHOD /path` (under /api/v1, query ignored) with a reply, or a function of the call. */
  on(route: string, handler: Handler): this {
    this.routes.set(route, handler);
    return this;
  }

  /** The calls made to `METHOD /path`, oldest first. */
  called(route: string): Call[] {
    return this.calls.filter((c) => `${c.method} ${c.path}` === route);
  }

  /** The body of the last call to `METHOD /path` (the test fails when there was none). */
  lastBody(route: string): unknown {
    const calls = this.called(route);
    if (calls.length === 0) throw new Error(`no call to ${route}; calls: ${this.routesCalled().join(", ")}`);
    return calls[calls.length - 1]?.body;
  }

  routesCalled(): string[] {
    return this.calls.map((c) => `${c.method} ${c.path}${c.query.size ? `?${c.query.toString()}` : ""}`);
  }

  /** The sign-in page asks each OAuth provider whether it is configured: `configured` answer yes. */
  oauthProviders(...configured: string[]): this {
    for (const provider of ["google", "apple", "github", "facebook"]) {
      this.on(
        `POST /auth/oauth/${provider}/token`,
        configured.includes(provider)
          ? apiError(400, "invalid_state", "Unknown or expired state.")
          : apiError(503, "provider_not_configured", "This provider is not configured."),
      );
    }
    return this;
  }

  async fetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, "http://app.test");
    const method = (init.method ?? "GET").toUpperCase();
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname;
    const text = typeof init.body === "string" ? init.body : null;
    const call: Call = {
      method,
      path,
      query: url.searchParams,
      body: text === null ? undefined : (JSON.parse(text) as unknown),
      headers: { ...(init.headers as Record<string, string> | undefined) },
    };
    this.calls.push(call);
    const handler = this.routes.get(`${method} ${path}`);
    if (handler === undefined) {
      this.unexpected.push(`${method} ${path}`);
      return json({ status: 501, body: { error: { code: "not_stubbed", message: `No stub for ${method} ${path}` } } });
    }
    return json(typeof handler === "function" ? await handler(call) : handler);
  }
}

function json(reply: Reply): Response {
  const status = reply.status ?? 200;
  const body = status === 204 || reply.body === undefined ? null : JSON.stringify(reply.body);
  return new Response(body, { status, headers: { "Content-Type": "application/json", ...reply.headers } });
}

let current: FakeApi | null = null;

/** Replace the network for this test: fetch and XMLHttpRequest reach `api` only. */
export function stubApi(): FakeApi {
  const api = new FakeApi();
  current = api;
  vi.stubGlobal(
    "fetch",
    vi.fn((input: RequestInfo | URL, init?: RequestInit) => api.fetch(input, init)),
  );
  vi.stubGlobal(
    "XMLHttpRequest",
    class extends PendingUpload {
      constructor() {
        super(api);
      }
    },
  );
  return api;
}

// A React warning (an update outside act, a key missing, a render that threw) fails the test that caused it.
let consoleErrors: unknown[][] = [];
beforeEach(() => {
  consoleErrors = [];
  const original = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    consoleErrors.push(args);
    original(...args);
  });
});

afterEach(() => {
  cleanup();
  clearSession();
  sessionStorage.clear();
  const api = current;
  current = null;
  if (api && api.unexpected.length > 0) {
    throw new Error(`the app called routes no test stubbed: ${api.unexpected.join(", ")}`);
  }
  if (consoleErrors.length > 0) {
    throw new Error(`console.error during the test: ${consoleErrors.map((args) => String(args[0])).join(" | ")}`);
  }
});

function base64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A token pair as the auth service answers it (the access token a JWT with `sub` and `roles`). */
export function tokens(userId = "user-1", roles: string[] = ["user"], email: string | null = "ana@example.com"): TokenResponse {
  const claims = { sub: userId, roles, exp: Math.floor(Date.now() / 1000) + 3600 };
  return {
    access_token: `${base64url({ alg: "none", typ: "JWT" })}.${base64url(claims)}.sig`,
    refresh_token: `refresh-${userId}`,
    token_type: "bearer",
    expires_in: 3600,
    user: { id: userId, email, roles },
  };
}

/** Sign the tab in (as sign-in would) without asking the API. */
export function signIn(userId = "user-1", roles: string[] = ["user"]): void {
  acceptTokens(tokens(userId, roles));
}

function Elsewhere() {
  const location = useLocation();
  return <p data-testid="elsewhere">{`${location.pathname}${location.search}`}</p>;
}

/** Where the app is: `router.state.location` (the shape a data router has) kept up to date by a probe. */
function LocationProbe({ into }: { into: { state: { location: Location } } }) {
  into.state.location = useLocation();
  return null;
}

/** Render `element` at `path` (matched by `route`), behind the app's role guard when `role` is given (as
 * App.tsx routes it); any other address renders a marker with its path. A
 * MemoryRouter, not a data router: the pages load nothing through the router, and a data router's
 * navigation builds a fetch Request with jsdom's AbortSignal, which Node's Request refuses. */
export function renderPage(
  element: ReactElement,
  {
    path = "/",
    route = path.split("?")[0] ?? "/",
    role,
  }: { path?: string; route?: string; role?: "user" | "operator" | "admin" } = {},
) {
  const queryClient = new QueryClient({
    defaultOptions: { queries: { retry: false, staleTime: 0 }, mutations: { retry: false } },
  });
  const router = { state: { location: { pathname: path, search: "", hash: "", state: null, key: "" } as Location } };
  const user = userEvent.setup({ delay: null }); // no pause between keystrokes
  const view = render(
    <QueryClientProvider client={queryClient}>
      <MemoryRouter initialEntries={[path]} future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <LocationProbe into={router} />
        <Routes>
          {role ? (
            <Route element={<RequireRole role={role} />}>
              <Route path={route} element={element} />
            </Route>
          ) : (
            <Route path={route} element={element} />
          )}
          <Route path="*" element={<Elsewhere />} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return { ...view, user, router, queryClient };
}
