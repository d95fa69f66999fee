import { useState } from "react";
import { Link } from "react-router-dom";
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import { api } from "../api/client";
import type { FeedbackKind, Page, Recommendation } from "../api/types";
import { useSession } from "../auth/session";
import { Empty, ErrorMessage, Loading, PageTitle } from "../components/status";
import { formatDate, personaName } from "../format";

const FEEDBACK: { kind: FeedbackKind; label: string; done: string }[] = [
  { kind: "helpful", label: "Helpful", done: "Marked as helpful. Thank you." },
  { kind: "not_helpful", label: "Not helpful", done: "Marked as not helpful. Thank you." },
  { kind: "saved", label: "Save", done: "Saved." },
  { kind: "dismissed", label: "Dismiss", done: "Dismissed: it will not be suggested again." },
];

function RecommendationCard({ item, userId }: { item: Recommendation; userId: string }) {
  const [given, setGiven] = useState<FeedbackKind | null>(null);
  const feedback = useMutation({
    mutationFn: (kind: FeedbackKind) =>
      api<{ status: string }>(`/recommendations/${encodeURIComponent(userId)}/feedback`, {
        method: "POST",
        body: { recommendation_id: item.id, kind },
      }),
    onSuccess: (_, kind) => setGiven(kind),
  });
  const titleId = `rec-${item.id}`;
  const done = FEEDBACK.find((f) => f.kind === given);
  return (
    <article
      className={`card recommendation ${given === "dismissed" ? "dismissed" : ""}`}
      aria-labelledby={titleId}
      data-testid="recommendation"
    >
      <p className={`badge badge-${item.kind}`}>{item.kind === "offer" ? "Partner offer" : "Education"}</p>
      <h2 id={titleId}>{item.title}</h2>
      <p>{item.body}</p>
      <section className="why" aria-label="Why you see this">
        <h3>Why you see this</h3>
        <p data-testid="rationale">{item.rationale}</p>
      </section>
      <p className="disclosure small">{item.disclosure}</p>
      <p className="muted small">
        For: {personaName(item.persona)} · {formatDate(item.created_at)}
      </p>
      <div className="feedback" role="group" aria-label={`Feedback on “${item.title}”`}>
        {FEEDBACK.map((f) => (
          <button
            key={f.kind}
            type="button"
            className={`button small ${given === f.kind ? "" : "secondary"}`}
            aria-pressed={given === f.kind}
            disabled={feedback.isPending}
            onClick={() => feedback.mutate(f.kind)}
          >
            {f.label}
          </button>
        ))}
      </div>
      <div aria-live="polite">
        {done && <p className="small success-text">{done.done}</p>}
      </div>
      {feedback.isError && <ErrorMessage error={feedback.error} title="Your feedback was not recorded" />}
    </article>
  );
}

export function Recommendations() {
  const session = useSession();
  const list = useInfiniteQuery({
    queryKey: ["recommendations", session.userId],
    queryFn: ({ pageParam }) =>
      api<Page<Recommendation>>(`/recommendations/${encodeURIComponent(session.userId)}`, {
        query: { limit: 20, cursor: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section>
      <PageTitle title="Recommendations">Your recommendations</PageTitle>
      <p>
        Education and offers chosen from your own data. Each says why you see it. A reviewer approves every item
        before it appears here.
      </p>
      <div className="button-row">
        <button
          type="button"
          className="button secondary small"
          onClick={() => void list.refetch()}
          disabled={list.isFetching}
        >
          {list.isFetching && !list.isFetchingNextPage ? "Refreshing…" : "Refresh"}
        </button>
      </div>
      {list.isPending && <Loading label="Loading your recommendations…" />}
      {list.isError && <ErrorMessage error={list.error} onRetry={() => void list.refetch()} />}
      {list.isSuccess && items.length === 0 && (
        <Empty title="No recommendations yet">
          <p>
            They appear after <Link to="/me/upload">your data</Link> is analyzed and a reviewer approves them. Check
            back soon.
          </p>
        </Empty>
      )}
      {items.length > 0 && (
        <div className="recommendations">
          <p className="muted small" role="status" data-testid="recommendation-count">
            {items.length} recommendation{items.length === 1 ? "" : "s"}
          </p>
          {items.map((item) => (
            <RecommendationCard key={item.id} item={item} userId={session.userId} />
          ))}
        </div>
      )}
      {list.hasNextPage && (
        <button
          type="button"
          className="button secondary"
          onClick={() => void list.fetchNextPage()}
          disabled={list.isFetchingNextPage}
        >
          {list.isFetchingNextPage ? "Loading more…" : "Load more"}
        </button>
      )}
    </section>
  );
}
