// One user as an operator sees them: signals of both windows, personas and their history, the review items
// with their states and decisions, and the decision traces with the hash chain's verification.
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { api, ApiError } from "../../api/client";
import type { ChainReport, Trace, TraceCheck, TracePage, UserDetail as UserDetailData, Window } from "../../api/types";
import { CashFlowChart, IncomeChart, SavingsChart, SubscriptionsChart, UtilizationChart } from "../../components/charts";
import { Empty, ErrorMessage, Loading, PageTitle } from "../../components/status";
import { formatDate, formatDateTime, formatNumber, humanize, personaName, WINDOW_LABEL } from "../../format";

const WINDOWS: Window[] = ["30d", "180d"];
const TRACE_PAGE = 20;

function Refused({ error }: { error: unknown }) {
  if (error instanceof ApiError && error.code === "consent_required") {
    return (
      <div className="alert alert-error" role="alert">
        <p className="alert-title">This user has not given current consent</p>
        <p>
          SpendSense shows staff nothing of a user's data (signals, personas, recommendations, traces) while their
          consent is not current. It will show here again once they consent.
        </p>
        <p className="muted small">Error code: consent_required</p>
      </div>
    );
  }
  if (error instanceof ApiError && error.status === 404) {
    return (
      <div className="alert alert-error" role="alert">
        <p className="alert-title">No such user</p>
        <p>
          SpendSense's operator records know nothing of this user id: it may be mistyped, the user may have no data
          yet, or their data was erased.
        </p>
        <p className="muted small">Error code: {error.code}</p>
      </div>
    );
  }
  return <ErrorMessage error={error} />;
}

/** The verification of the hash chains of a user's decision traces, as a badge. */
export function ChainBadge({ chain }: { chain: ChainReport }) {
  const state = chain.ok ? "verified" : "broken";
  return (
    <p className="chain-line" data-testid="chain-badge" data-state={state}>
      <span className={`badge ${chain.ok ? "badge-ok" : "badge-bad"}`}>
        {chain.ok ? "Chain verified" : "Chain broken"}
      </span>{" "}
      {chain.ok ? (
        <span>
          {chain.checked} trace{chain.checked === 1 ? "" : "s"} checked: none edited, removed, inserted or reordered.
        </span>
      ) : (
        <span>
          At trace {(chain.broken_at ?? 0) + 1}
          {chain.chain_id ? ` of chain ${chain.chain_id}` : ""}
          {chain.trace_id ? ` (${chain.trace_id})` : ""}: {chain.reason ?? "the hashes do not match"}. {chain.checked}{" "}
          checked before it.
        </span>
      )}
    </p>
  );
}

function traceTitle(trace: Trace): string {
  return trace.output?.title ?? trace.catalog?.item_id ?? trace.recommendation_id ?? "Trace";
}

function guardrailsPassed(trace: Trace): boolean | null {
  const g = trace.guardrails as { passed?: unknown } | undefined;
  return typeof g?.passed === "boolean" ? g.passed : null;
}

function TraceSummary({ trace, onOpen, open }: { trace: Trace; onOpen: () => void; open: boolean }) {
  const passed = guardrailsPassed(trace);
  const actions = trace.operator_actions ?? [];
  return (
    <li className={`card trace ${open ? "selected" : ""}`} data-testid="trace" data-id={trace.recommendation_id}>
      <p className="trace-title">
        <strong>{traceTitle(trace)}</strong> <code className="muted small">{trace.recommendation_id}</code>
      </p>
      <dl className="facts small">
        <div>
          <dt>Persona</dt>
          <dd>
            {personaName(String(trace.persona?.primary ?? "")) || "—"} (rule set {trace.persona?.rule_set_version ?? "—"})
          </dd>
        </div>
        <div>
          <dt>Catalog item</dt>
          <dd>
            {trace.catalog?.item_id ?? "—"} ({trace.catalog?.kind ?? "—"}, {trace.catalog?.version ?? "—"})
          </dd>
        </div>
        <div>
          <dt>Rank and score</dt>
          <dd>
            #{trace.selection?.rank ?? "—"}, score {formatNumber(trace.selection?.score, 2)}
          </dd>
        </div>
        <div>
          <dt>Written by</dt>
          <dd>{(typeof trace.generator === "object" ? trace.generator?.used : trace.generator) ?? "—"}</dd>
        </div>
        <div>
          <dt>Guardrails</dt>
          <dd>{passed === null ? "—" : passed ? "passed" : "failed"}</dd>
        </div>
        <div>
          <dt>Data as of</dt>
          <dd>{formatDate(trace.input?.as_of ?? null)}</dd>
        </div>
        <div>
          <dt>Operator actions</dt>
          <dd>
            {actions.length === 0
              ? "none"
              : actions.map((a) => humanize(String(a.action ?? a.decision ?? "action"))).join(", ")}
          </dd>
        </div>
      </dl>
      <button type="button" className="button secondary small" onClick={onOpen} aria-expanded={open}>
        {open ? "Showing this trace" : "View trace"}
        <span className="visually-hidden"> {trace.recommendation_id}</span>
      </button>
    </li>
  );
}

function TraceDetail({ userId, recommendationId, onClose }: { userId: string; recommendationId: string; onClose: () => void }) {
  const detail = useQuery({
    queryKey: ["trace", userId, recommendationId],
    queryFn: () =>
      api<TraceCheck>(`/recommendations/${encodeURIComponent(userId)}/traces/${encodeURIComponent(recommendationId)}`),
  });
  return (
    <section className="card trace-detail" aria-labelledby="trace-detail-title" data-testid="trace-detail">
      <h3 id="trace-detail-title">
        Trace of <code>{recommendationId}</code>
      </h3>
      {detail.isPending && <Loading label="Loading the trace, verifying the chain and replaying the decision…" />}
      {detail.isError && <ErrorMessage error={detail.error} onRetry={() => void detail.refetch()} />}
      {detail.isSuccess && (
        <>
          <ChainBadge chain={detail.data.chain} />
          <p className="chain-line" data-testid="replay-badge" data-state={detail.data.replay.matches ? "matches" : "differs"}>
            <span className={`badge ${detail.data.replay.matches ? "badge-ok" : "badge-bad"}`}>
              {detail.data.replay.matches ? "Replay matches" : "Replay differs"}
            </span>{" "}
            {detail.data.replay.matches
              ? "Recomputed from the recorded inputs and catalog version, the decision is the same."
              : "Recomputed from the recorded inputs, the decision differs:"}
          </p>
          {detail.data.replay.differences.length > 0 && (
            <ul>
              {detail.data.replay.differences.map((d) => (
                <li key={d}>{d}</li>
              ))}
            </ul>
          )}
          <pre className="json" tabIndex={0} role="region" aria-label="The trace as JSON">
            {JSON.stringify(detail.data.trace, null, 2)}
          </pre>
        </>
      )}
      <button type="button" className="button secondary small" onClick={onClose}>
        Close the trace
      </button>
    </section>
  );
}

function Traces({ userId }: { userId: string }) {
  const [params, setParams] = useSearchParams();
  const open = params.get("trace");
  const traces = useInfiniteQuery({
    queryKey: ["traces", userId],
    queryFn: ({ pageParam }) =>
      api<TracePage>(`/recommendations/${encodeURIComponent(userId)}/traces`, {
        query: { limit: TRACE_PAGE, cursor: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = traces.data?.pages.flatMap((p) => p.items) ?? [];
  const chain = traces.data?.pages[0]?.chain;

  function show(id: string | null) {
    const next = new URLSearchParams(params);
    if (id) next.set("trace", id);
    else next.delete("trace");
    setParams(next, { replace: true });
  }

  return (
    <section aria-labelledby="traces-title">
      <h2 id="traces-title">Decision traces</h2>
      <p className="muted small">
        Each recommendation's inputs, persona, eligibility, scores and text, sealed in a hash chain per user.
      </p>
      {traces.isPending && <Loading label="Loading the traces and verifying the chain…" />}
      {traces.isError && <ErrorMessage error={traces.error} onRetry={() => void traces.refetch()} />}
      {chain && <ChainBadge chain={chain} />}
      {open && <TraceDetail userId={userId} recommendationId={open} onClose={() => show(null)} />}
      {traces.isSuccess && items.length === 0 && <Empty title="No decision trace yet" />}
      {items.length > 0 && (
        <ul className="trace-list" aria-label="Decision traces">
          {items.map((t, n) => (
            <TraceSummary
              key={t.recommendation_id ?? n}
              trace={t}
              open={open === t.recommendation_id}
              onOpen={() => t.recommendation_id && show(t.recommendation_id)}
            />
          ))}
        </ul>
      )}
      {traces.hasNextPage && (
        <button
          type="button"
          className="button secondary"
          onClick={() => void traces.fetchNextPage()}
          disabled={traces.isFetchingNextPage}
        >
          {traces.isFetchingNextPage ? "Loading more…" : "Load more traces"}
        </button>
      )}
    </section>
  );
}

function Signals({ detail }: { detail: UserDetailData }) {
  const [selected, setSelected] = useState<Window>("30d");
  const window = detail.signals[selected];
  const s = window?.signals;
  return (
    <section aria-labelledby="signals-title">
      <h2 id="signals-title">Signals</h2>
      <fieldset className="segmented">
        <legend>Window</legend>
        {WINDOWS.map((w) => (
          <label key={w} className={w === selected ? "selected" : ""}>
            <input type="radio" name="user-window" value={w} checked={w === selected} onChange={() => setSelected(w)} />
            {WINDOW_LABEL[w]}
          </label>
        ))}
      </fieldset>
      {!window ? (
        <Empty title={`No signals for the ${WINDOW_LABEL[selected].toLowerCase()} yet.`} />
      ) : (
        <>
          <p className="muted small">
            Data as of {formatDate(window.as_of)}, rule set {window.rule_set_version}, computed{" "}
            {formatDateTime(window.assigned_at)}.
          </p>
          {s && (
            <div className="charts">
              {s.credit && <UtilizationChart cards={s.credit.cards ?? []} />}
              {s.subscriptions && <SubscriptionsChart subscriptions={s.subscriptions} />}
              {s.savings && <SavingsChart savings={s.savings} />}
              {s.income && <IncomeChart income={s.income} streams={s.subscriptions?.streams ?? []} />}
              {s.cash_flow && <CashFlowChart cashFlow={s.cash_flow} />}
            </div>
          )}
        </>
      )}
    </section>
  );
}

export function UserDetail() {
  const { userId = "" } = useParams();
  const user = useQuery({
    queryKey: ["operator-user", userId],
    queryFn: () => api<UserDetailData>(`/operator/users/${encodeURIComponent(userId)}`),
  });
  const d = user.data;

  return (
    <section>
      <PageTitle title="User detail">User detail</PageTitle>
      <p>
        <code data-testid="user-id">{userId}</code> ·{" "}
        <Link to={`/operator/review?status=all&user_id=${encodeURIComponent(userId)}`}>This user's review items</Link> ·{" "}
        <Link to={`/operator/audit?user_id=${encodeURIComponent(userId)}`}>Audit log</Link>
      </p>
      {user.isPending && <Loading label="Loading the user…" />}
      {user.isError && <Refused error={user.error} />}
      {d && (
        <>
          <div className="persona-summary">
            {WINDOWS.map((w) => (
              <div key={w} className="card persona-card" data-testid={`user-persona-${w}`}>
                <p className="muted small">{WINDOW_LABEL[w]}</p>
                <p className="persona-name">{d.personas[w] ? personaName(d.personas[w]) : "Not assigned yet"}</p>
              </div>
            ))}
          </div>

          <Signals detail={d} />

          <section aria-labelledby="history-title">
            <h2 id="history-title">Persona history</h2>
            {d.persona_history.length === 0 ? (
              <Empty title="No persona assigned yet" />
            ) : (
              <div className="table-wrap" tabIndex={0} role="region" aria-label="Persona assignments">
                <table>
                  <caption className="visually-hidden">Persona assignments, newest first</caption>
                  <thead>
                    <tr>
                      <th scope="col">Assigned</th>
                      <th scope="col">Window</th>
                      <th scope="col">Persona</th>
                      <th scope="col">Also matched</th>
                      <th scope="col">Rule set</th>
                      <th scope="col">Why</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.persona_history.map((r, n) => (
                      <tr key={`${r.window}-${r.assigned_at}-${n}`}>
                        <td>{formatDateTime(r.assigned_at)}</td>
                        <td>{WINDOW_LABEL[r.window as Window] ?? r.window}</td>
                        <td>{personaName(r.persona)}</td>
                        <td>{r.matched.filter((m) => m !== r.persona).map(personaName).join(", ") || "—"}</td>
                        <td>{r.rule_set_version}</td>
                        <td>{humanize(r.reason)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {d.persona_history_truncated && <p className="muted small">Only the newest assignments are shown.</p>}
          </section>

          <section aria-labelledby="recs-title">
            <h2 id="recs-title">Recommendations and decisions</h2>
            <ul className="counts" aria-label="Review items per status">
              {Object.entries(d.counts).map(([status, count]) => (
                <li key={status} className="chip">
                  {humanize(status)} <strong>{count}</strong>
                </li>
              ))}
            </ul>
            {d.recommendations.length === 0 ? (
              <Empty title="No recommendation in the review queue for this user" />
            ) : (
              <div className="table-wrap" tabIndex={0} role="region" aria-label="Recommendations table">
                <table data-testid="user-recommendations">
                  <caption className="visually-hidden">The user's recommendations, newest first</caption>
                  <thead>
                    <tr>
                      <th scope="col">Title</th>
                      <th scope="col">Type</th>
                      <th scope="col">Status</th>
                      <th scope="col">Decision</th>
                      <th scope="col">Trace</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.recommendations.map((r) => (
                      <tr key={r.recommendation_id} data-status={r.status}>
                        <td>
                          {r.override ? (
                            <>
                              {r.override.title}
                              <span className="muted small"> (overridden; was “{r.title}”)</span>
                            </>
                          ) : (
                            r.title
                          )}
                        </td>
                        <td>{r.kind === "offer" ? "Offer" : "Education"}</td>
                        <td>
                          <span className={`badge status-${r.status}`}>{humanize(r.status)}</span>
                          {r.flagged && r.status !== "flagged" && <span className="badge badge-warn">Flagged before</span>}
                          {!r.guardrails_passed && <span className="badge badge-bad">Guardrails failed</span>}
                        </td>
                        <td>
                          {r.decided_at ? (
                            <>
                              {formatDateTime(r.decided_at)} by <code>{r.decided_by}</code>
                              {r.reason ? `: ${r.reason}` : ""}
                            </>
                          ) : (
                            "Awaiting review"
                          )}
                        </td>
                        <td>
                          <Link to={`?trace=${encodeURIComponent(r.recommendation_id)}#traces-title`} replace>
                            Trace<span className="visually-hidden"> of {r.title}</span>
                          </Link>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {d.recommendations_truncated && <p className="muted small">Only the newest recommendations are shown.</p>}
          </section>

          <Traces userId={userId} />
        </>
      )}
    </section>
  );
}
