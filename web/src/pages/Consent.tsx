import { useEffect, useRef, useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { ConsentRecord, ConsentStatus, ErasureAccepted } from "../api/types";
import { clearSession, useSession } from "../auth/session";
import { ErrorMessage, Loading, Notice, PageTitle } from "../components/status";
import { formatDateTime, humanize } from "../format";

export const POLICY_VERSION = "2026-01";

const SCOPES: { id: string; label: string; about: string; required?: boolean }[] = [
  {
    id: "analysis",
    label: "Analysis",
    about:
      "Read the accounts, transactions and liabilities you upload, compute signals (card utilization, recurring payments, savings, income) and assign a persona.",
    required: true,
  },
  {
    id: "recommendations",
    label: "Recommendations",
    about: "Choose education and partner offers that fit your signals, each explained with your own numbers.",
  },
  {
    id: "operator_review",
    label: "Operator review",
    about:
      "Let SpendSense's reviewers read what was generated for you, to approve or reject it before you see it.",
  },
];

function PolicyText() {
  return (
    <article className="policy" aria-labelledby="policy-title">
      <h2 id="policy-title">Data and consent policy (version {POLICY_VERSION})</h2>
      <p>
        SpendSense offers financial <strong>education</strong>, not financial advice. To do that it processes the
        bank data you upload: account names, types, balances and limits, the last four digits of account
        numbers, transactions, and card and loan liabilities.
      </p>
      <ul>
        <li>We use your data only for the purposes you consent to below, and only while your consent is current.</li>
        <li>
          We never send your name, email, account numbers or raw transactions to a language model; a generated text
          may only restate rounded figures computed from your data.
        </li>
        <li>Every recommendation records how it was chosen, so a reviewer (and you, on request) can see why.</li>
        <li>
          You can revoke consent at any time: all processing stops, and you no longer see signals or
          recommendations until you consent again.
        </li>
        <li>
          You can ask us to erase your data: your account, uploads, signals, personas and recommendations are
          deleted from every service. Reviewers' audit records stay, without your identity.
        </li>
      </ul>
    </article>
  );
}

function History({ items }: { items: ConsentRecord[] }) {
  if (items.length === 0) return null;
  return (
    <details className="card">
      <summary>Consent history ({items.length})</summary>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Consent history">
        <table>
          <caption className="visually-hidden">Every consent you gave, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Policy</th>
              <th scope="col">Scopes</th>
              <th scope="col">Granted</th>
              <th scope="col">Revoked</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.consent_id}>
                <td>{c.policy_version}</td>
                <td>{c.scopes.map(humanize).join(", ")}</td>
                <td>{formatDateTime(c.granted_at)}</td>
                <td>{c.revoked_at ? formatDateTime(c.revoked_at) : "current"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

function EraseData({ userId }: { userId: string }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (open) headingRef.current?.focus();
  }, [open]);

  const erase = useMutation({
    mutationFn: () =>
      api<ErasureAccepted>(`/consent/${encodeURIComponent(userId)}`, {
        method: "DELETE",
        query: { erase: true },
      }),
    onSuccess: (result) => {
      queryClient.clear();
      clearSession(`Your data is being erased. ${result.next}`);
      navigate("/signin", { replace: true });
    },
  });

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (typed.trim().toUpperCase() === "ERASE") erase.mutate();
  }

  return (
    <section className="card danger-zone" aria-labelledby="erase-title">
      <h2 id="erase-title">Erase my data</h2>
      <p>
        Delete your account and everything SpendSense holds about you, in every service. This cannot be undone.
      </p>
      {!open ? (
        <button type="button" className="button danger" onClick={() => setOpen(true)}>
          Erase my data…
        </button>
      ) : (
        <form onSubmit={onSubmit} className="confirm" aria-labelledby="erase-confirm-title">
          <h3 id="erase-confirm-title" ref={headingRef} tabIndex={-1}>
            Are you sure?
          </h3>
          <p>
            Your account, consent, uploads, signals, personas and recommendations will be deleted, and you will be
            signed out. Type <strong>ERASE</strong> to confirm.
          </p>
          <div className="field">
            <label htmlFor="erase-confirm">Type ERASE to confirm</label>
            <input
              id="erase-confirm"
              autoComplete="off"
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
            />
          </div>
          {erase.isError && <ErrorMessage error={erase.error} title="Could not erase your data" />}
          <div className="button-row">
            <button
              type="submit"
              className="button danger"
              disabled={typed.trim().toUpperCase() !== "ERASE" || erase.isPending}
            >
              {erase.isPending ? "Erasing…" : "Erase everything"}
            </button>
            <button
              type="button"
              className="button secondary"
              onClick={() => {
                setOpen(false);
                setTyped("");
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

export function Consent() {
  const session = useSession();
  const location = useLocation();
  const queryClient = useQueryClient();
  const welcome = Boolean((location.state as { welcome?: boolean } | null)?.welcome);
  const [agreed, setAgreed] = useState(false);
  const [scopes, setScopes] = useState<string[]>(SCOPES.map((s) => s.id));
  const [done, setDone] = useState<string | null>(null);

  const consent = useQuery({
    queryKey: ["consent", session.userId],
    queryFn: async () => {
      try {
        return await api<ConsentStatus>(`/consent/${encodeURIComponent(session.userId)}`);
      } catch (error) {
        // No profile yet (it is created a moment after sign-up, or by the first consent): no consent.
        if (error instanceof ApiError && error.status === 404) {
          return { user_id: session.userId, current: null, history: [] } satisfies ConsentStatus;
        }
        throw error;
      }
    },
  });

  const changed = () => {
    void queryClient.invalidateQueries({ queryKey: ["consent", session.userId] });
    void queryClient.invalidateQueries({ queryKey: ["profile", session.userId] });
    void queryClient.invalidateQueries({ queryKey: ["persona"] });
    void queryClient.invalidateQueries({ queryKey: ["signals"] });
    void queryClient.invalidateQueries({ queryKey: ["recommendations"] });
  };

  const grant = useMutation({
    mutationFn: () =>
      api<ConsentRecord>("/consent", {
        method: "POST",
        body: { user_id: session.userId, policy_version: POLICY_VERSION, scopes },
      }),
    onSuccess: () => {
      setDone("Consent given. You can now upload your data.");
      setAgreed(false);
      changed();
    },
  });

  const revoke = useMutation({
    mutationFn: () => api<ConsentRecord>(`/consent/${encodeURIComponent(session.userId)}`, { method: "DELETE" }),
    onSuccess: () => {
      setDone("Consent revoked. SpendSense has stopped processing your data.");
      changed();
    },
  });

  const current = consent.data?.current ?? null;

  function onGrant(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    if (agreed) grant.mutate();
  }

  function toggleScope(id: string, on: boolean) {
    setScopes((now) => (on ? [...new Set([...now, id])] : now.filter((s) => s !== id)));
  }

  return (
    <section>
      <PageTitle title="Consent">Consent</PageTitle>
      {welcome && !current && (
        <Notice>Welcome to SpendSense. Before anything is processed, read the policy and give your consent.</Notice>
      )}
      {done && <Notice tone="success">{done}</Notice>}
      {consent.isPending && <Loading label="Loading your consent…" />}
      {consent.isError && <ErrorMessage error={consent.error} onRetry={() => void consent.refetch()} />}
      {consent.isSuccess && (
        <>
          <div className={`card status-card ${current ? "granted" : "none"}`}>
            <h2>Current status</h2>
            {current ? (
              <p data-testid="consent-status">
                <strong>Consent given</strong> on {formatDateTime(current.granted_at)} (policy{" "}
                {current.policy_version}) for: {current.scopes.map(humanize).join(", ")}.
              </p>
            ) : (
              <p data-testid="consent-status">
                <strong>No current consent.</strong> SpendSense processes none of your data.
              </p>
            )}
            {current && (
              <>
                {revoke.isError && <ErrorMessage error={revoke.error} title="Could not revoke consent" />}
                <button
                  type="button"
                  className="button secondary"
                  disabled={revoke.isPending}
                  onClick={() => {
                    setDone(null);
                    revoke.mutate();
                  }}
                >
                  {revoke.isPending ? "Revoking…" : "Revoke consent"}
                </button>
              </>
            )}
          </div>

          <PolicyText />

          {!current && (
            <form className="card form" onSubmit={onGrant} aria-labelledby="grant-title">
              <h2 id="grant-title">Give consent</h2>
              <fieldset>
                <legend>What SpendSense may do</legend>
                {SCOPES.map((scope) => (
                  <label key={scope.id} className="checkbox scope">
                    <input
                      type="checkbox"
                      checked={scopes.includes(scope.id)}
                      disabled={scope.required}
                      onChange={(e) => toggleScope(scope.id, e.target.checked)}
                    />
                    <span>
                      <strong>{scope.label}</strong>
                      {scope.required && " (required)"}: {scope.about}
                    </span>
                  </label>
                ))}
              </fieldset>
              <label className="checkbox">
                <input type="checkbox" required checked={agreed} onChange={(e) => setAgreed(e.target.checked)} />
                I have read the policy (version {POLICY_VERSION}) and I consent to the processing above.
              </label>
              {grant.isError && <ErrorMessage error={grant.error} title="Could not record your consent" />}
              <button type="submit" className="button" disabled={!agreed || grant.isPending}>
                {grant.isPending ? "Saving…" : "Give consent"}
              </button>
            </form>
          )}

          <History items={consent.data.history} />
          <EraseData userId={session.userId} />
        </>
      )}
    </section>
  );
}
