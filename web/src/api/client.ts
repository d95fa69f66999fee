// Every call to the API goes through here: the bearer token, one refresh-and-retry on an expired
// token, and errors turned into ApiError with the API's code and message (SPEC §9:
// {"error": {"code", "message", "details"?}}) so every page can say what went wrong in words.
import { currentSession, refreshSession } from "../auth/session";
import type { UploadAccepted } from "./types";

export const API = "/api/v1";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const STATUS_WORDS: Record<number, string> = {
  400: "The request was not understood.",
  401: "You need to sign in again.",
  403: "You are not allowed to do that.",
  404: "That was not found.",
  409: "That conflicts with something that already exists.",
  413: "That is too large.",
  422: "Some of what was sent is not valid.",
  429: "Too many attempts. Wait a moment and try again.",
  500: "SpendSense hit an unexpected error.",
  502: "A SpendSense service is unavailable right now.",
  503: "SpendSense is not ready right now.",
  504: "A SpendSense service took too long to answer.",
};

/** An ApiError from a response that is not OK: the API's error body when there is one. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return errorFromBody(response.status, body, response.headers.get("Retry-After"));
}

export function errorFromBody(status: number, body: unknown, retryAfter?: string | null): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  const code = typeof error?.code === "string" ? error.code : `http_${status}`;
  let message =
    typeof error?.message === "string" && error.message
      ? error.message
      : (STATUS_WORDS[status] ?? `The server answered ${status}.`);
  if (status === 429 && retryAfter) message += ` (try again in ${retryAfter} s)`;
  return new ApiError(status, code, message, error?.details);
}

export const NETWORK_ERROR_MESSAGE = "SpendSense could not be reached. Check your connection and try again.";

interface RequestOptions {
  method?: string;
  body?: unknown;
  /** A body sent as is (not JSON-encoded), with this content type. */
  text?: { body: string; contentType: string };
  query?: Record<string, string | number | boolean | null | undefined>;
  signal?: AbortSignal;
  auth?: boolean; // default true
  accept?: string;
}

function url(path: string, query?: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return `${API}${path}${qs ? `?${qs}` : ""}`;
}

async function send(path: string, options: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: options.accept ?? "application/json" };
  if (options.text) headers["Content-Type"] = options.text.contentType;
  else if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(url(path, options.query), {
      method: options.method ?? "GET",
      headers,
      body: options.text ? options.text.body : options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network_error", NETWORK_ERROR_MESSAGE);
  }
}

/** The raw response of an OK call (refreshing the token once on a 401), or an ApiError. */
export async function apiResponse(path: string, options: RequestOptions = {}): Promise<Response> {
  const useAuth = options.auth !== false;
  let session = useAuth ? currentSession() : null;
  let response = await send(path, options, session?.accessToken ?? null);
  if (response.status === 401 && useAuth && session) {
    session = await refreshSession();
    if (session) response = await send(path, options, session.accessToken);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** JSON from the API (undefined for 204). */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiResponse(path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** Upload a file as multipart `file`, reporting progress (XMLHttpRequest: fetch cannot report upload
 * progress). Resolves with the 202 answer. */
export function uploadFile(
  file: File,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<UploadAccepted> {
  const attempt = (token: string | null): Promise<{ status: number; body: unknown; retryAfter: string | null }> =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${API}/uploads`);
      xhr.responseType = "text";
      xhr.setRequestHeader("Accept", "application/json");
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      };
      xhr.onload = () => {
        let body: unknown = null;
        try {
          body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          body = null;
        }
        resolve({ status: xhr.status, body, retryAfter: xhr.getResponseHeader("Retry-After") });
      };
      xhr.onerror = () => reject(new ApiError(0, "network_error", NETWORK_ERROR_MESSAGE));
      xhr.onabort = () => reject(new DOMException("upload cancelled", "AbortError"));
      signal?.addEventListener("abort", () => xhr.abort(), { once: true });
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });

  return (async () => {
    let session = currentSession();
    let result = await attempt(session?.accessToken ?? null);
    if (result.status === 401 && session) {
      session = await refreshSession();
      if (session) result = await attempt(session.accessToken);
    }
    if (result.status < 200 || result.status >= 300) {
      throw errorFromBody(result.status, result.body, result.retryAfter);
    }
    return result.body as UploadAccepted;
  })();
}

/** Fetch a file the API serves behind the bearer token and hand it to the browser as a download. */
export async function downloadFile(path: string, fallbackName: string, accept = "*/*"): Promise<void> {
  const response = await apiResponse(path, { accept });
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

/** The error in words, for people: the API's message, and each invalid field when it names them. */
export function describeError(error: unknown): { title: string; lines: string[] } {
  if (error instanceof ApiError) {
    const lines: string[] = [];
    const details = error.details;
    if (Array.isArray(details)) {
      for (const item of details.slice(0, 20)) {
        if (typeof item === "string") lines.push(item);
        else if (item && typeof item === "object") {
          const { field, reason, path, message } = item as Record<string, unknown>;
          const where = typeof field === "string" ? field : typeof path === "string" ? path : "";
          const what = typeof reason === "string" ? reason : typeof message === "string" ? message : "";
          if (where || what) lines.push(where && what ? `${where}: ${what}` : where || what);
        }
      }
    }
    // The message often already lists the first fields; show details only when they add something.
    const said = (line: string) => {
      if (error.message.includes(line)) return true;
      const split = line.indexOf(": ");
      return split > 0 && error.message.includes(line.slice(0, split)) && error.message.includes(line.slice(split + 2));
    };
    const extra = lines.filter((line) => !said(line));
    return { title: error.message, lines: extra };
  }
  if (error instanceof Error) return { title: error.message, lines: [] };
  return { title: "Something went wrong.", lines: [] };
}
