// Loading, error and empty states, the same everywhere.
import { useEffect, useRef, type ReactNode } from "react";
import { Link, useLocation } from "react-router-dom";
import { ApiError, describeError } from "../api/client";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

/** What to do next for the errors a user can act on. */
function hint(error: unknown): ReactNode {
  if (!(error instanceof ApiError)) return null;
  if (error.code === "consent_required") {
    return (
      <>
        SpendSense needs your current consent for this. <Link to="/me/consent">Review consent</Link>.
      </>
    );
  }
  if (error.code === "not_analyzed") {
    return (
      <>
        Nothing has been analyzed yet. <Link to="/me/upload">Upload your data</Link> first.
      </>
    );
  }
  if (error.status === 401) return <Link to="/signin">Sign in again</Link>;
  return null;
}

export function ErrorMessage({
  error,
  title,
  onRetry,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}) {
  const { title: message, lines } = describeError(error);
  const code = error instanceof ApiError ? error.code : null;
  const next = hint(error);
  return (
    <div className="alert alert-error" role="alert">
      {title && <p className="alert-title">{title}</p>}
      <p>{message}</p>
      {lines.length > 0 && (
        <ul>
          {lines.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
      {next && <p>{next}</p>}
      {code && <p className="muted small">Error code: {code}</p>}
      {onRetry && (
        <button type="button" className="button secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children}
    </div>
  );
}

export function Notice({ children, tone = "info" }: { children: ReactNode; tone?: "info" | "success" }) {
  return (
    <div className={`alert alert-${tone}`} role="status" aria-live="polite">
      {children}
    </div>
  );
}

let firstLocation: string | null = null;

/** A page's heading: sets the document title and, after a navigation inside the app, takes focus, so
 * keyboard and screen-reader users land at the top of the new page. The first page of a visit keeps
 * the browser's own start (where the "Skip to content" link comes first). */
export function PageTitle({ children, title }: { children: ReactNode; title: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  const location = useLocation();
  useEffect(() => {
    document.title = `${title} · SpendSense`;
    if (firstLocation === null) firstLocation = location.key;
    if (location.key !== firstLocation) ref.current?.focus({ preventScroll: true });
  }, [title, location.key]);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}
