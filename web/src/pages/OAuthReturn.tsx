import { useEffect, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api, ApiError } from "../api/client";
import type { TokenResponse } from "../api/types";
import { isProvider, PROVIDER_NAMES, takeOAuthFrom } from "../auth/oauth";
import { acceptTokens } from "../auth/session";
import { ErrorMessage, Loading, PageTitle } from "../components/status";
import { destination } from "./SignIn";

// A login code is single use: never redeem one twice (React's strict mode runs effects twice in development).
const redeemed = new Map<string, Promise<TokenResponse>>();

function redeem(provider: string, loginCode: string): Promise<TokenResponse> {
  let pending = redeemed.get(loginCode);
  if (!pending) {
    pending = api<TokenResponse>(`/auth/oauth/${provider}/token`, {
      method: "POST",
      auth: false,
      body: { login_code: loginCode },
    });
    redeemed.set(loginCode, pending);
  }
  return pending;
}

/** ``/signin/oauth/:provider``: where the auth API sends the browser back with a one-time login code
 * (or an error), which is traded for the tokens here. */
export function OAuthReturn() {
  const { provider } = useParams();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  const loginCode = params.get("login_code");
  const failure = params.get("error");
  const name = isProvider(provider) ? PROVIDER_NAMES[provider] : (provider ?? "the provider");

  useEffect(() => {
    if (!isProvider(provider)) {
      setError(new ApiError(404, "unknown_provider", `${provider ?? "?"} is not a sign-in provider SpendSense knows.`));
      return;
    }
    if (failure || !loginCode) {
      const reason = params.get("reason");
      setError(
        new ApiError(
          401,
          failure ?? "oauth_failed",
          `${PROVIDER_NAMES[provider]} did not sign you in${reason ? ` (${reason})` : ""}.`,
        ),
      );
      return;
    }
    let live = true;
    redeem(provider, loginCode).then(
      (tokens) => {
        if (!live) return;
        const session = acceptTokens(tokens);
        navigate(destination(session, takeOAuthFrom()), { replace: true });
      },
      (exc: unknown) => {
        if (live) setError(exc);
      },
    );
    return () => {
      live = false;
    };
  }, [provider, loginCode, failure, params, navigate]);

  return (
    <section className="narrow">
      <PageTitle title={`Signing in with ${name}`}>Signing in with {name}</PageTitle>
      {error ? (
        <>
          <ErrorMessage error={error} title={`Could not sign in with ${name}`} />
          <p>
            <Link to="/signin">Back to sign-in</Link>
          </p>
        </>
      ) : (
        <Loading label="Finishing the sign-in…" />
      )}
    </section>
  );
}
