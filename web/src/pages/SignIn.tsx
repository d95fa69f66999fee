import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router-dom";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import type { CodeSent, TokenResponse } from "../api/types";
import { configuredProviders, PROVIDER_NAMES, startOAuth, type Provider } from "../auth/oauth";
import { acceptTokens, hasRole, useAuth, type Session } from "../auth/session";
import { ErrorMessage, Notice, PageTitle } from "../components/status";

export function destination(session: Session, from: unknown): string {
  if (typeof from === "string" && from.startsWith("/") && !from.startsWith("/sign")) return from;
  return hasRole(session, "operator") ? "/operator/review" : "/me";
}

function PasswordForm({ onSignedIn }: { onSignedIn: (tokens: TokenResponse) => void }) {
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
    onSuccess: onSignedIn,
  });

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    login.mutate();
  }

  return (
    <form className="card form" onSubmit={onSubmit}>
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
  );
}

/** Sign in (or up: a new number makes a new account) with a 6-digit code sent by SMS. */
function PhoneForm({ onSignedIn }: { onSignedIn: (tokens: TokenResponse) => void }) {
  const [phone, setPhone] = useState("");
  const [sent, setSent] = useState<CodeSent | null>(null);
  const [code, setCode] = useState("");
  const codeRef = useRef<HTMLInputElement>(null);

  const request = useMutation({
    mutationFn: (resend: boolean) =>
      api<CodeSent>(resend ? "/auth/phone/resend" : "/auth/phone/request", {
        method: "POST",
        auth: false,
        body: { phone: resend && sent ? sent.phone : phone.trim() },
      }),
    onSuccess: (answer) => {
      setSent(answer);
      setCode("");
    },
  });
  const verify = useMutation({
    mutationFn: () =>
      api<TokenResponse>("/auth/phone/verify", {
        method: "POST",
        auth: false,
        body: { phone: sent?.phone ?? phone.trim(), code: code.trim() },
      }),
    onSuccess: onSignedIn,
  });

  useEffect(() => {
    if (sent) codeRef.current?.focus();
  }, [sent]);

  function onRequest(event: FormEvent) {
    event.preventDefault();
    verify.reset();
    request.mutate(false);
  }

  function onVerify(event: FormEvent) {
    event.preventDefault();
    verify.mutate();
  }

  return (
    <section className="card" aria-labelledby="signin-phone-title">
      <h2 id="signin-phone-title">Use a code sent to your phone</h2>
      {!sent ? (
        <form className="form" onSubmit={onRequest}>
          <div className="field">
            <label htmlFor="signin-phone">Phone number</label>
            <input
              id="signin-phone"
              name="phone"
              type="tel"
              autoComplete="tel"
              inputMode="tel"
              required
              aria-describedby="signin-phone-hint"
              value={phone}
              onChange={(e) => setPhone(e.target.value)}
            />
            <p id="signin-phone-hint" className="muted small">
              In international form, e.g. +1 415 555 2671. A new number creates an account.
            </p>
          </div>
          {request.isError && <ErrorMessage error={request.error} title="No code was sent" />}
          <button type="submit" className="button secondary" disabled={request.isPending}>
            {request.isPending ? "Sending…" : "Send code"}
          </button>
        </form>
      ) : (
        <form className="form" onSubmit={onVerify}>
          <Notice>
            A 6-digit code was sent to <strong>{sent.phone}</strong>. It works for{" "}
            {Math.round(sent.expires_in / 60)} minutes.
          </Notice>
          <div className="field">
            <label htmlFor="signin-code">Code from the SMS</label>
            <input
              id="signin-code"
              ref={codeRef}
              name="code"
              type="text"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9]{6}"
              maxLength={6}
              required
              value={code}
              onChange={(e) => setCode(e.target.value.replace(/\D/g, ""))}
            />
          </div>
          {verify.isError && <ErrorMessage error={verify.error} title="The code was not accepted" />}
          {request.isError && <ErrorMessage error={request.error} title="No new code was sent" />}
          <div className="button-row">
            <button type="submit" className="button" disabled={verify.isPending || code.length !== 6}>
              {verify.isPending ? "Checking…" : "Verify code"}
            </button>
            <button
              type="button"
              className="button secondary"
              disabled={request.isPending}
              onClick={() => {
                verify.reset();
                request.mutate(true);
              }}
            >
              {request.isPending ? "Sending…" : "Send a new code"}
            </button>
            <button
              type="button"
              className="button secondary"
              onClick={() => {
                setSent(null);
                verify.reset();
                request.reset();
              }}
            >
              Use another number
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

/** One button per provider the auth service is configured for; nothing when there is none. */
function ProviderButtons({ from }: { from: string | null }) {
  const providers = useQuery({ queryKey: ["oauth-providers"], queryFn: configuredProviders, staleTime: 300_000 });
  const start = useMutation({ mutationFn: (provider: Provider) => startOAuth(provider, from) });
  const list = providers.data ?? [];
  if (list.length === 0) return null;
  return (
    <section className="card" aria-labelledby="signin-oauth-title">
      <h2 id="signin-oauth-title">Use another account</h2>
      <div className="button-row oauth-buttons">
        {list.map((p) => (
          <button
            key={p}
            type="button"
            className="button secondary"
            data-provider={p}
            disabled={start.isPending}
            onClick={() => start.mutate(p)}
          >
            {start.isPending && start.variables === p ? `Opening ${PROVIDER_NAMES[p]}…` : `Continue with ${PROVIDER_NAMES[p]}`}
          </button>
        ))}
      </div>
      {start.isError && <ErrorMessage error={start.error} title={`Could not open ${PROVIDER_NAMES[start.variables]}`} />}
    </section>
  );
}

export function SignIn() {
  const auth = useAuth();
  const location = useLocation();
  const navigate = useNavigate();
  const from = (location.state as { from?: unknown } | null)?.from;
  const [signingIn, setSigningIn] = useState(false);

  function onSignedIn(tokens: TokenResponse) {
    setSigningIn(true);
    const session = acceptTokens(tokens);
    navigate(destination(session, from), { replace: true });
  }

  if (auth.status === "signed_in" && !signingIn) {
    return <Navigate to={destination(auth.session, from)} replace />;
  }

  return (
    <section className="narrow">
      <PageTitle title="Sign in">Sign in</PageTitle>
      {auth.status === "signed_out" && auth.notice && <Notice>{auth.notice}</Notice>}
      {typeof from === "string" && from.startsWith("/") && <Notice>Sign in to continue to that page.</Notice>}
      <PasswordForm onSignedIn={onSignedIn} />
      <PhoneForm onSignedIn={onSignedIn} />
      <ProviderButtons from={typeof from === "string" ? from : null} />
      <p>
        New to SpendSense? <Link to="/signup">Create an account</Link>.
      </p>
    </section>
  );
}
