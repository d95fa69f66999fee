import { useState, type FormEvent } from "react";
import { Link, Navigate, useNavigate } from "react-router-dom";
import { useMutation } from "@tanstack/react-query";
import { api } from "../api/client";
import type { TokenResponse } from "../api/types";
import { acceptTokens, useAuth } from "../auth/session";
import { ErrorMessage, PageTitle } from "../components/status";

/** The rules the auth service applies (it names every one that fails; this list only helps while typing). */
const RULES: { id: string; label: string; test: (p: string) => boolean }[] = [
  { id: "length", label: "at least 12 characters", test: (p) => p.length >= 12 },
  { id: "upper", label: "an uppercase letter", test: (p) => /[A-Z]/.test(p) },
  { id: "lower", label: "a lowercase letter", test: (p) => /[a-z]/.test(p) },
  { id: "digit", label: "a digit", test: (p) => /\d/.test(p) },
  { id: "symbol", label: "a symbol", test: (p) => /[^\p{L}\p{N}\s]/u.test(p) },
];

export function SignUp() {
  const auth = useAuth();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [showPassword, setShowPassword] = useState(false);

  const register = useMutation({
    mutationFn: () =>
      api<TokenResponse>("/auth/register", {
        method: "POST",
        auth: false,
        body: { email: email.trim(), password },
      }),
    onSuccess: (tokens) => {
      acceptTokens(tokens);
      navigate("/me/consent", { replace: true, state: { welcome: true } });
    },
  });

  if (auth.status === "signed_in" && !register.isPending && !register.isSuccess) {
    return <Navigate to="/me" replace />;
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    register.mutate();
  }

  return (
    <section className="narrow">
      <PageTitle title="Create your account">Create your account</PageTitle>
      <p>
        SpendSense turns your bank data into education that explains itself, with your own numbers. You decide
        what it may process, and you can erase everything at any time.
      </p>
      <form className="card form" onSubmit={onSubmit}>
        <div className="field">
          <label htmlFor="signup-email">Email</label>
          <input
            id="signup-email"
            name="email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="signup-password">Password</label>
          <input
            id="signup-password"
            name="new-password"
            type={showPassword ? "text" : "password"}
            autoComplete="new-password"
            required
            aria-describedby="password-rules"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <label className="checkbox small">
            <input type="checkbox" checked={showPassword} onChange={(e) => setShowPassword(e.target.checked)} />
            Show password
          </label>
          <ul id="password-rules" className="rules small" aria-label="Password rules">
            {RULES.map((rule) => {
              const ok = rule.test(password);
              return (
                <li key={rule.id} className={ok ? "ok" : ""}>
                  <span aria-hidden="true">{ok ? "✓" : "•"}</span> {rule.label}
                  <span className="visually-hidden">{ok ? " (met)" : " (not met yet)"}</span>
                </li>
              );
            })}
            <li>
              <span aria-hidden="true">•</span> not a common password
            </li>
          </ul>
        </div>
        {register.isError && <ErrorMessage error={register.error} title="Could not create the account" />}
        <button type="submit" className="button" disabled={register.isPending}>
          {register.isPending ? "Creating your account…" : "Create account"}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/signin">Sign in</Link>.
      </p>
    </section>
  );
}
