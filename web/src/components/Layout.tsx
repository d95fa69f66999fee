import { NavLink, Navigate, Outlet, useLocation, useNavigate } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import { hasRole, signOut, useAuth } from "../auth/session";
import { Loading } from "./status";

function NavItem({ to, children, end = false }: { to: string; children: string; end?: boolean }) {
  return (
    <li>
      <NavLink to={to} end={end} className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
        {children}
      </NavLink>
    </li>
  );
}

export function Layout() {
  const auth = useAuth();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const session = auth.status === "signed_in" ? auth.session : null;

  async function onSignOut() {
    await signOut();
    queryClient.clear();
    navigate("/signin", { replace: true });
  }

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <div className="container header-row">
          <NavLink to="/" className="brand" aria-label="SpendSense home">
            <svg viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" focusable="false">
              <rect width="32" height="32" rx="6" fill="currentColor" />
              <path d="M8 21l5-6 4 4 7-9" fill="none" stroke="#fff" strokeWidth="3" strokeLinecap="round" />
            </svg>
            <span>SpendSense</span>
          </NavLink>
          {session ? (
            <div className="account">
              <span className="muted small account-email" title={session.email ?? session.userId}>
                {session.email ?? session.userId}
              </span>
              <button type="button" className="button secondary small" onClick={() => void onSignOut()}>
                Sign out
              </button>
            </div>
          ) : (
            <div className="account">
              <NavLink to="/signin" className="nav-link">
                Sign in
              </NavLink>
              <NavLink to="/signup" className="button small">
                Sign up
              </NavLink>
            </div>
          )}
        </div>
        {session && (
          <nav className="container" aria-label="Main">
            <ul className="nav-list">
              <NavItem to="/me" end>
                Overview
              </NavItem>
              <NavItem to="/me/consent">Consent</NavItem>
              <NavItem to="/me/upload">Upload</NavItem>
              <NavItem to="/me/persona">My persona</NavItem>
              <NavItem to="/me/recommendations">Recommendations</NavItem>
              {hasRole(session, "operator") && (
                <>
                  <NavItem to="/operator/review">Review queue</NavItem>
                  <NavItem to="/operator/audit">Audit log</NavItem>
                </>
              )}
              {hasRole(session, "admin") && (
                <>
                  <NavItem to="/admin/rules">Rule sets</NavItem>
                  <NavItem to="/admin/dead-letters">Dead letters</NavItem>
                </>
              )}
            </ul>
          </nav>
        )}
      </header>
      <main id="main" className="container" tabIndex={-1}>
        <Outlet />
      </main>
      <footer className="site-footer container muted small">
        SpendSense offers educational content, not financial advice.
      </footer>
    </>
  );
}

/** Routes for signed-in people with at least ``role`` (from the access token's roles claim). Anyone
 * else is sent to sign in, and comes back here after. */
export function RequireRole({ role }: { role: "user" | "operator" | "admin" }) {
  const auth = useAuth();
  const location = useLocation();
  if (auth.status === "restoring") return <Loading label="Restoring your session…" />;
  if (auth.status === "signed_out") {
    return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  }
  if (!hasRole(auth.session, role)) {
    return (
      <div className="alert alert-error" role="alert">
        <h1>Not allowed</h1>
        <p>
          This page is for {role === "operator" ? "operators" : role === "admin" ? "administrators" : `${role}s`}.
          Your account does not have that role.
        </p>
      </div>
    );
  }
  return <Outlet />;
}

/** ``/``: where a person starts. */
export function Home() {
  const auth = useAuth();
  if (auth.status === "restoring") return <Loading label="Restoring your session…" />;
  if (auth.status === "signed_out") return <Navigate to="/signin" replace />;
  return <Navigate to={hasRole(auth.session, "operator") ? "/operator/review" : "/me"} replace />;
}
