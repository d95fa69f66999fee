import { useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router-dom";
import { useMutation } from "@tanstack/react-query";
import { api } from "../api/client";
import type { TokenResponse } from "../api/types";
import { acceptTokens, hasRole, useAuth, type Session } from "../auth/session";
import { ErrorMessage, Notice, PageTitle } from "../components/status";

function destination(session: Session, from: unknown): string {
  if (typeof from === "string" && from.startsWith("/") && !from.startsWith("/sign")) return from;
  return hasRole(session, "operator") ? "/operator/review" : "/me";
}

export function SignIn() {
  const auth = useAuth();
  const location = useLocation();
  const navigate = useNavigate();
  const from = (location.state as { from?: unknown } | null)?.from;
  const [identifier, setIdentifier] = useState("");
  const [password, setPassword] = useState("");
  const [showPassword, setShowPassword] = useState(false);

  const login = useMutation({
    mutationFn: () =>
      api<TokenResponse>("/auth/login", {
        method: "POST",
        auth: false,
        body: identifier.includes("@")
          ? { email: identifier.trim(), password }
          : { username: identifier.trim(), password },
      }),
    onSuccess: (tokens) => {
      const session = acceptTokens(tokens);
      navigate(destination(session, from), { replace: true });
    },
  });

  if (auth.status === "signed_in" && !login.isPending && !login.isSuccess) {
    return <Navigate to={destination(auth.session, from)} replace />;
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    login.mutate();
  }

  return (
    <section className="narrow">
      <PageTitle title="Sign in">Sign in</PageTitle>
      {auth.status === "signed_out" && auth.notice && <Notice>{auth.notice}</Notice>}
      {typeof from === "string" && from.startsWith("/") && (
        <Notice>Sign in to continue to that page.</Notice>
      )}
      <form className="card form" onSubmit={onSubmit} noValidate={false}>
        <div className="field">
          <label htmlFor="signin-identifier">Email or username</label>
          <input
            id="signin-identifier"
            name="username"
            type="text"
            autoComplete="username"
            required
            value={identifier}
            onChange={(e) => setIdentifier(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="signin-password">Password</label>
          <input
            id="signin-password"
            name="password"
            type={showPassword ? "text" : "password"}
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <label className="checkbox small">
            <input type="checkbox" checked={showPassword} onChange={(e) => setShowPassword(e.target.checked)} />
            Show password
          </label>
        </div>
        {login.isError && <ErrorMessage error={login.error} title="Could not sign in" />}
        <button type="submit" className="button" disabled={login.isPending}>
          {login.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New to SpendSense? <Link to="/signup">Create an account</Link>.
      </p>
    </section>
  );
}
