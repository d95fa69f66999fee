import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import { api, downloadFile } from "../../api/client";
import type { AuditEntry, Page } from "../../api/types";
import { Empty, ErrorMessage, Loading, PageTitle } from "../../components/status";
import { formatDateTime, humanize } from "../../format";

const FILTERS = [
  { name: "user_id", label: "User id" },
  { name: "operator_id", label: "Operator id" },
  { name: "recommendation_id", label: "Recommendation id" },
] as const;

export function Audit() {
  const [params, setParams] = useSearchParams();
  const filters = Object.fromEntries(FILTERS.map((f) => [f.name, params.get(f.name) ?? ""])) as Record<
    (typeof FILTERS)[number]["name"],
    string
  >;
  const [draft, setDraft] = useState(filters);

  const log = useInfiniteQuery({
    queryKey: ["audit", filters],
    queryFn: ({ pageParam }) =>
      api<Page<AuditEntry>>("/operator/audit", { query: { ...filters, limit: 50, cursor: pageParam } }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const entries = log.data?.pages.flatMap((p) => p.items) ?? [];

  const exportCsv = useMutation({
    mutationFn: () => {
      const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
      const qs = query.toString();
      return downloadFile(`/operator/audit.csv${qs ? `?${qs}` : ""}`, "operator-audit.csv", "text/csv");
    },
  });

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name, value] of Object.entries(draft)) if (value.trim()) next.set(name, value.trim());
    setParams(next);
  }

  return (
    <section>
      <PageTitle title="Audit log">Audit log</PageTitle>
      <p>Every operator decision, newest first: who, when, the status before and after, and the reason.</p>
      <form className="filters card" onSubmit={onSubmit} aria-label="Filters">
        {FILTERS.map((f) => (
          <div className="field" key={f.name}>
            <label htmlFor={`audit-${f.name}`}>{f.label}</label>
            <input
              id={`audit-${f.name}`}
              value={draft[f.name]}
              onChange={(e) => setDraft({ ...draft, [f.name]: e.target.value })}
            />
          </div>
        ))}
        <div className="button-row">
          <button type="submit" className="button secondary">
            Filter
          </button>
          <button
            type="button"
            className="button"
            onClick={() => exportCsv.mutate()}
            disabled={exportCsv.isPending}
          >
            {exportCsv.isPending ? "Preparing CSV…" : "Download CSV"}
          </button>
        </div>
      </form>
      {exportCsv.isError && <ErrorMessage error={exportCsv.error} title="The export failed" />}
      {log.isPending && <Loading label="Loading the audit log…" />}
      {log.isError && <ErrorMessage error={log.error} onRetry={() => void log.refetch()} />}
      {log.isSuccess && entries.length === 0 && <Empty title="No operator action recorded yet" />}
      {entries.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Audit log entries">
          <table className="audit">
            <caption className="visually-hidden">Operator actions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Operator</th>
                <th scope="col">Action</th>
                <th scope="col">Recommendation</th>
                <th scope="col">User</th>
                <th scope="col">Status</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e, i) => (
                <tr key={`${e.seq ?? "x"}-${i}`}>
                  <td>{formatDateTime(e.at)}</td>
                  <td>
                    <code>{e.operator_id}</code>
                  </td>
                  <td>{humanize(e.action)}</td>
                  <td>
                    <code>{e.recommendation_id}</code>
                  </td>
                  <td>
                    <code>{e.user_id}</code>
                  </td>
                  <td>
                    {humanize(e.before_status)} → {humanize(e.after_status)}
                  </td>
                  <td>
                    {e.reason ?? ""}
                    {typeof e.after?.title === "string" && (
                      <span className="muted small">
                        {e.reason ? " · " : ""}shown instead: “{e.after.title}”
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {log.hasNextPage && (
        <button
          type="button"
          className="button secondary"
          onClick={() => void log.fetchNextPage()}
          disabled={log.isFetchingNextPage}
        >
          {log.isFetchingNextPage ? "Loading more…" : "Load more"}
        </button>
      )}
    </section>
  );
}
