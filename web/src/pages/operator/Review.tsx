import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../api/client";
import type { DecisionResult, OverrideResult, ReviewItem, ReviewPage, ReviewSort, ReviewStatus } from "../../api/types";
import { Empty, ErrorMessage, Loading, Notice, PageTitle } from "../../components/status";
import { formatDateTime, humanize, PERSONAS, personaName } from "../../format";
import { OverrideEditor } from "./OverrideEditor";

// The statuses every queue has; any other the API counts (e.g. "overridden") is shown after them.
const STATUSES: ReviewStatus[] = ["pending", "flagged", "approved", "rejected"];
const PAGE_SIZE = 50;
const SORTS: { value: ReviewSort; label: string }[] = [
  { value: "date", label: "Newest first" },
  { value: "priority", label: "Highest priority first" },
  { value: "user", label: "By user" },
];

function Guardrails({ item }: { item: ReviewItem }) {
  const failed = Object.entries(item.guardrails)
    .filter(([, ok]) => !ok)
    .map(([name]) => humanize(name));
  return (
    <span className={`badge ${item.guardrails_passed ? "badge-ok" : "badge-bad"}`}>
      {item.guardrails_passed ? "Guardrails passed" : `Guardrails failed: ${failed.join(", ") || "see trace"}`}
    </span>
  );
}

function ReviewRow({
  item,
  selected,
  onToggle,
  editing,
  onEdit,
  onOverridden,
}: {
  item: ReviewItem;
  selected: boolean;
  onToggle: (on: boolean) => void;
  editing: boolean;
  onEdit: (on: boolean) => void;
  onOverridden: (result: OverrideResult) => void;
}) {
  const checkboxId = `select-${item.recommendation_id}`;
  const shown = item.override;
  return (
    <li
      className={`card review-item ${selected ? "selected" : ""}`}
      data-testid="review-item"
      data-user={item.user_id}
      data-id={item.recommendation_id}
      data-status={item.status}
    >
      <div className="review-head">
        <input
          id={checkboxId}
          type="checkbox"
          checked={selected}
          onChange={(e) => onToggle(e.target.checked)}
        />
        <label htmlFor={checkboxId} className="review-title">
          <span className="visually-hidden">Select </span>
          {item.title}
        </label>
      </div>
      <p className="badges">
        <span className={`badge status-${item.status}`}>{humanize(item.status)}</span>
        <span className={`badge badge-${item.kind}`}>{item.kind === "offer" ? "Offer" : "Education"}</span>
        <span className="badge">{personaName(item.persona)}</span>
        <Guardrails item={item} />
        {item.flagged && item.status !== "flagged" && <span className="badge badge-warn">Flagged before</span>}
        {item.fell_back_to_template && <span className="badge">Template fallback</span>}
      </p>
      {shown ? (
        <div className="override-shown" data-testid="override-shown">
          <p>
            <strong>Shown instead</strong>{" "}
            <span className="muted small">
              ({shown.source === "catalog_item" ? `catalog item ${shown.catalog_item_id}` : "edited by an operator"})
            </span>
            : <span className="override-title">{shown.title}</span>
          </p>
          <p>
            <strong>Rationale:</strong> {shown.rationale}
          </p>
        </div>
      ) : (
        <p>
          <strong>Rationale:</strong> {item.rationale}
        </p>
      )}
      <div className="button-row item-actions">
        <Link to={`/operator/users/${encodeURIComponent(item.user_id)}`} className="button secondary small">
          User detail<span className="visually-hidden"> for {item.title}</span>
        </Link>
        {!editing && (
          <button type="button" className="button secondary small" onClick={() => onEdit(true)}>
            Override…<span className="visually-hidden"> {item.title}</span>
          </button>
        )}
      </div>
      {editing && <OverrideEditor item={item} onCancel={() => onEdit(false)} onDone={onOverridden} />}
      <details>
        <summary>Full text and details</summary>
        {shown && <p className="muted small">The recommender's original text:</p>}
        {shown && (
          <p>
            <strong>{item.title}</strong>: {item.rationale}
          </p>
        )}
        <p>{item.body}</p>
        <p className="disclosure small">{item.disclosure}</p>
        <dl className="facts small">
          <div>
            <dt>User</dt>
            <dd>
              <Link to={`/operator/users/${encodeURIComponent(item.user_id)}`}>
                <code>{item.user_id}</code>
              </Link>
            </dd>
          </div>
          <div>
            <dt>Catalog item</dt>
            <dd>
              {item.catalog_item_id} (v{item.catalog_version})
            </dd>
          </div>
          <div>
            <dt>Generator</dt>
            <dd>{item.generator}</dd>
          </div>
          <div>
            <dt>Priority</dt>
            <dd>{item.priority}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{formatDateTime(item.created_at)}</dd>
          </div>
          {item.decided_at && (
            <div>
              <dt>Decided</dt>
              <dd>
                {formatDateTime(item.decided_at)} by <code>{item.decided_by}</code>
                {item.reason ? `: ${item.reason}` : ""}
              </dd>
            </div>
          )}
        </dl>
      </details>
    </li>
  );
}

export function Review() {
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "pending"; // a status, or "all"
  const kind = params.get("kind") ?? "";
  const persona = params.get("persona") ?? "";
  const userId = params.get("user_id") ?? "";
  const sort = (SORTS.find((s) => s.value === params.get("sort"))?.value ?? "date") as ReviewSort;
  const [userDraft, setUserDraft] = useState(userId);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [acting, setActing] = useState<"reject" | "flag" | null>(null);
  const [reason, setReason] = useState("");
  const [result, setResult] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const reasonRef = useRef<HTMLTextAreaElement>(null);

  const filters = { status: status === "all" ? undefined : status, kind, persona, user_id: userId, sort };
  const queue = useInfiniteQuery({
    queryKey: ["review", filters],
    queryFn: ({ pageParam }) =>
      api<ReviewPage>("/operator/review", { query: { ...filters, limit: PAGE_SIZE, cursor: pageParam } }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = queue.data?.pages.flatMap((p) => p.items) ?? [];
  const counts: Record<string, number | undefined> = queue.data?.pages[0]?.counts ?? {};
  const statuses = [...STATUSES, ...Object.keys(counts).filter((s) => !STATUSES.includes(s as ReviewStatus))];

  useEffect(() => setSelected(new Set()), [status, kind, persona, userId]);
  useEffect(() => {
    if (acting) reasonRef.current?.focus();
  }, [acting]);

  function setFilter(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value && !(name === "sort" && value === "date")) next.set(name, value);
    else next.delete(name);
    setParams(next);
    setResult(null);
  }

  const decided = (verb: string) => (answer: DecisionResult) => {
    setResult(`${verb} ${answer.items.length} item${answer.items.length === 1 ? "" : "s"}.`);
    setSelected(new Set());
    setActing(null);
    setReason("");
    void queryClient.invalidateQueries({ queryKey: ["review"] });
    void queryClient.invalidateQueries({ queryKey: ["audit"] });
  };

  const approve = useMutation({
    mutationFn: (ids: string[]) =>
      api<DecisionResult>("/operator/approve", { method: "POST", body: { recommendation_ids: ids } }),
    onSuccess: decided("Approved"),
  });
  const reject = useMutation({
    mutationFn: ({ ids, why }: { ids: string[]; why: string }) =>
      api<DecisionResult>("/operator/reject", { method: "POST", body: { recommendation_ids: ids, reason: why } }),
    onSuccess: decided("Rejected"),
  });
  const flag = useMutation({
    mutationFn: ({ ids, why }: { ids: string[]; why: string }) =>
      api<DecisionResult>("/operator/flag", {
        method: "POST",
        body: why ? { recommendation_ids: ids, reason: why } : { recommendation_ids: ids },
      }),
    onSuccess: decided("Flagged"),
  });

  function overridden(answer: OverrideResult) {
    setEditing(null);
    setResult(`Override saved: the user now sees “${answer.item.override?.title ?? answer.item.title}”.`);
    void queryClient.invalidateQueries({ queryKey: ["review"] });
    void queryClient.invalidateQueries({ queryKey: ["audit"] });
    void queryClient.invalidateQueries({ queryKey: ["operator-user"] });
  }

  // Only what is shown counts: an item decided elsewhere (or just now) leaves the list and the selection.
  const shown = new Set(items.map((i) => i.recommendation_id));
  const ids = [...selected].filter((id) => shown.has(id));
  const allSelected = items.length > 0 && items.every((i) => selected.has(i.recommendation_id));
  const busy = approve.isPending || reject.isPending || flag.isPending;

  function toggle(id: string, on: boolean) {
    setSelected((now) => {
      const next = new Set(now);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  }

  function onAct(event: FormEvent) {
    event.preventDefault();
    if (acting === "flag") flag.mutate({ ids, why: reason.trim() });
    else if (reason.trim()) reject.mutate({ ids, why: reason.trim() });
  }

  function onUserFilter(event: FormEvent) {
    event.preventDefault();
    setFilter("user_id", userDraft.trim());
  }

  return (
    <section>
      <PageTitle title="Review queue">Review queue</PageTitle>
      <form className="filters card" onSubmit={onUserFilter} aria-label="Filters">
        <div className="field">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(e) => setFilter("status", e.target.value)}>
            {statuses.map((s) => (
              <option key={s} value={s}>
                {humanize(s)}
                {counts[s] !== undefined ? ` (${counts[s]})` : ""}
              </option>
            ))}
            <option value="all">All</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-kind">Type</label>
          <select id="filter-kind" value={kind} onChange={(e) => setFilter("kind", e.target.value)}>
            <option value="">All types</option>
            <option value="education">Education</option>
            <option value="offer">Offer</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-persona">Persona</label>
          <select id="filter-persona" value={persona} onChange={(e) => setFilter("persona", e.target.value)}>
            <option value="">All personas</option>
            {Object.entries(PERSONAS).map(([id, p]) => (
              <option key={id} value={id}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-sort">Sort by</label>
          <select id="filter-sort" value={sort} onChange={(e) => setFilter("sort", e.target.value)}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-user">User id</label>
          <div className="inline">
            <input id="filter-user" value={userDraft} onChange={(e) => setUserDraft(e.target.value)} />
            <button type="submit" className="button secondary small">
              Apply
            </button>
          </div>
        </div>
      </form>

      <ul className="counts" aria-label="Items per status">
        {statuses.map((s) => (
          <li key={s}>
            <button
              type="button"
              className={`chip ${status === s ? "active" : ""}`}
              aria-pressed={status === s}
              onClick={() => setFilter("status", s)}
            >
              {humanize(s)} <strong data-testid={`count-${s}`}>{counts[s] ?? "–"}</strong>
            </button>
          </li>
        ))}
      </ul>

      {result && <Notice tone="success">{result}</Notice>}

      <div className="bulk card" role="group" aria-label="Bulk actions">
        <label className="checkbox">
          <input
            type="checkbox"
            checked={allSelected}
            disabled={items.length === 0}
            onChange={(e) => setSelected(e.target.checked ? new Set(items.map((i) => i.recommendation_id)) : new Set())}
          />
          Select all {items.length > 0 ? `${items.length} shown` : ""}
        </label>
        <span className="muted small" aria-live="polite">
          {ids.length} selected
        </span>
        <button
          type="button"
          className="button"
          disabled={ids.length === 0 || busy}
          onClick={() => {
            setResult(null);
            approve.mutate(ids);
          }}
        >
          {approve.isPending ? "Approving…" : `Approve selected (${ids.length})`}
        </button>
        <button
          type="button"
          className="button danger"
          disabled={ids.length === 0 || busy}
          onClick={() => {
            setResult(null);
            setReason("");
            setActing("reject");
          }}
        >
          Reject selected…
        </button>
        <button
          type="button"
          className="button secondary"
          disabled={ids.length === 0 || busy}
          onClick={() => {
            setResult(null);
            setReason("");
            setActing("flag");
          }}
        >
          Flag selected…
        </button>
        <button type="button" className="button secondary" onClick={() => void queue.refetch()} disabled={queue.isFetching}>
          {queue.isFetching && !queue.isFetchingNextPage ? "Refreshing…" : "Refresh"}
        </button>
      </div>
      {approve.isError && <ErrorMessage error={approve.error} title="Nothing was approved" />}

      {acting && (
        <form className="card form" onSubmit={onAct} aria-labelledby="act-title">
          <h2 id="act-title">
            {acting === "flag" ? "Flag" : "Reject"} {ids.length} item{ids.length === 1 ? "" : "s"}
            {acting === "flag" ? " for a second review" : ""}
          </h2>
          <div className="field">
            <label htmlFor="act-reason">
              {acting === "flag" ? "Reason (optional; recorded in the audit log)" : "Reason (required; recorded in the audit log)"}
            </label>
            <textarea
              id="act-reason"
              ref={reasonRef}
              required={acting === "reject"}
              rows={3}
              maxLength={2000}
              value={reason}
              onChange={(e) => setReason(e.target.value)}
            />
          </div>
          {acting === "reject" && reject.isError && <ErrorMessage error={reject.error} title="Nothing was rejected" />}
          {acting === "flag" && flag.isError && <ErrorMessage error={flag.error} title="Nothing was flagged" />}
          <div className="button-row">
            {acting === "flag" ? (
              <button type="submit" className="button" disabled={busy || ids.length === 0}>
                {flag.isPending ? "Flagging…" : "Confirm flag"}
              </button>
            ) : (
              <button type="submit" className="button danger" disabled={!reason.trim() || busy || ids.length === 0}>
                {reject.isPending ? "Rejecting…" : "Confirm rejection"}
              </button>
            )}
            <button type="button" className="button secondary" onClick={() => setActing(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}

      {queue.isPending && <Loading label="Loading the queue…" />}
      {queue.isError && <ErrorMessage error={queue.error} onRetry={() => void queue.refetch()} />}
      {queue.isSuccess && items.length === 0 && (
        <Empty title="Nothing here">
          <p>No item matches these filters{status === "pending" ? ": the queue is clear" : ""}.</p>
        </Empty>
      )}
      {items.length > 0 && (
        <ul className="review-list" aria-label="Review items">
          {items.map((item) => (
            <ReviewRow
              key={item.recommendation_id}
              item={item}
              selected={selected.has(item.recommendation_id)}
              onToggle={(on) => toggle(item.recommendation_id, on)}
              editing={editing === item.recommendation_id}
              onEdit={(on) => {
                setResult(null);
                setEditing(on ? item.recommendation_id : null);
              }}
              onOverridden={overridden}
            />
          ))}
        </ul>
      )}
      {queue.hasNextPage && (
        <button
          type="button"
          className="button secondary"
          onClick={() => void queue.fetchNextPage()}
          disabled={queue.isFetchingNextPage}
        >
          {queue.isFetchingNextPage ? "Loading more…" : "Load more"}
        </button>
      )}
    </section>
  );
}
