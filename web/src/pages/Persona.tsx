import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { PersonaView, SignalsView, Window } from "../api/types";
import { useSession } from "../auth/session";
import { CashFlowChart, IncomeChart, SavingsChart, SubscriptionsChart, UtilizationChart } from "../components/charts";
import { Empty, ErrorMessage, Loading, PageTitle } from "../components/status";
import { formatDate, formatDateTime, humanize, PERSONAS, personaName, WINDOW_LABEL } from "../format";

const WINDOWS: Window[] = ["30d", "180d"];

function NotYet({ error }: { error: unknown }) {
  if (error instanceof ApiError && error.code === "not_analyzed") {
    return (
      <Empty title="Nothing analyzed yet">
        <p>
          Your persona appears once your data has been analyzed. <Link to="/me/upload">Upload your data</Link>, then
          come back here.
        </p>
      </Empty>
    );
  }
  return <ErrorMessage error={error} />;
}

export function Persona() {
  const session = useSession();
  const [selected, setSelected] = useState<Window>("30d");

  const persona = useQuery({
    queryKey: ["persona", session.userId],
    queryFn: () => api<PersonaView>(`/profile/${encodeURIComponent(session.userId)}/persona`, { query: { limit: 10 } }),
  });
  const signals = useQuery({
    queryKey: ["signals", session.userId, selected],
    queryFn: () =>
      api<SignalsView>(`/profile/${encodeURIComponent(session.userId)}/signals`, { query: { window: selected } }),
    enabled: persona.isSuccess,
  });

  const current = persona.data?.current[selected];
  const s = signals.data?.signals;

  return (
    <section>
      <PageTitle title="My persona">My persona</PageTitle>
      {persona.isPending && <Loading label="Loading your persona…" />}
      {persona.isError && <NotYet error={persona.error} />}
      {persona.isSuccess && (
        <>
          <div className="persona-summary">
            {WINDOWS.map((w) => {
              const a = persona.data.current[w];
              return (
                <div key={w} className="card persona-card" data-testid={`persona-${w}`}>
                  <p className="muted small">{WINDOW_LABEL[w]}</p>
                  <p className="persona-name">{a ? personaName(a.primary) : "Not assigned yet"}</p>
                  {a && <p className="muted small">Data as of {formatDate(a.as_of)}</p>}
                </div>
              );
            })}
          </div>

          <fieldset className="segmented">
            <legend>Window</legend>
            {WINDOWS.map((w) => (
              <label key={w} className={w === selected ? "selected" : ""}>
                <input
                  type="radio"
                  name="window"
                  value={w}
                  checked={w === selected}
                  onChange={() => setSelected(w)}
                />
                {WINDOW_LABEL[w]}
              </label>
            ))}
          </fieldset>

          {current ? (
            <section className="card" aria-labelledby="persona-why">
              <h2 id="persona-why">
                {personaName(current.primary)} <span className="muted small">({WINDOW_LABEL[selected].toLowerCase()})</span>
              </h2>
              <p>{PERSONAS[current.primary]?.about}</p>
              {current.matched.length > 0 && (
                <>
                  <h3>What matched</h3>
                  <ul>
                    {current.matched.map((m) => (
                      <li key={m.id}>
                        <strong>{personaName(m.id)}</strong>
                        {m.id === current.primary ? " (primary)" : ""}
                        {m.criteria && m.criteria.length > 0 && `: ${m.criteria.map(humanize).join("; ")}`}
                      </li>
                    ))}
                  </ul>
                </>
              )}
              <p className="muted small">
                Rule set {current.rule_set_version}, assigned {formatDateTime(current.assigned_at)}.
              </p>
            </section>
          ) : (
            <Empty title={`No persona for the ${WINDOW_LABEL[selected].toLowerCase()} yet.`} />
          )}

          <h2>The signals behind it</h2>
          {signals.isPending && <Loading label="Loading your signals…" />}
          {signals.isError && <NotYet error={signals.error} />}
          {s && (
            <div className="charts">
              {s.credit && <UtilizationChart cards={s.credit.cards ?? []} />}
              {s.subscriptions && <SubscriptionsChart subscriptions={s.subscriptions} />}
              {s.savings && <SavingsChart savings={s.savings} />}
              {s.income && <IncomeChart income={s.income} streams={s.subscriptions?.streams ?? []} />}
              {s.cash_flow && <CashFlowChart cashFlow={s.cash_flow} />}
            </div>
          )}
          {persona.data.history.length > 0 && (
            <details className="card">
              <summary>Persona history</summary>
              <ul>
                {persona.data.history.map((t) => (
                  <li key={`${t.window}-${t.assigned_at}`}>
                    {formatDateTime(t.assigned_at)} · {WINDOW_LABEL[t.window]}:{" "}
                    {t.previous ? `${personaName(t.previous)} → ` : ""}
                    {personaName(t.persona)}
                  </li>
                ))}
              </ul>
            </details>
          )}
        </>
      )}
    </section>
  );
}
