// Dead-letter queues (admins): each consuming service's DLQ, its depth and a peek at its messages with the
// error the consumer recorded (none consumed by looking), and the re-drive of a queue back to its service.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../../api/client";
import type { DeadLetterQueue } from "../../api/types";
import { Empty, ErrorMessage, Loading, Notice, PageTitle } from "../../components/status";
import { formatDateTime } from "../../format";

const PEEK = 20;
const REDRIVE_MAX = 1000;

function Redrive({ queue, onDone, onCancel }: { queue: DeadLetterQueue; onDone: (moved: number) => void; onCancel: () => void }) {
  const [count, setCount] = useState(String(Math.min(Math.max(queue.depth, 1), REDRIVE_MAX)));
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => ref.current?.focus(), []);
  const redrive = useMutation({
    mutationFn: (max: number) =>
      api<{ moved: number }>(`/admin/dead-letters/${encodeURIComponent(queue.service)}/redrive`, {
        method: "POST",
        body: { max_messages: max },
      }),
    onSuccess: (answer) => onDone(answer.moved),
  });
  const max = Number(count);
  const valid = Number.isInteger(max) && max >= 1 && max <= REDRIVE_MAX;

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (valid) redrive.mutate(max);
  }

  const id = `redrive-${queue.service}`;
  return (
    <form className="confirm" onSubmit={onSubmit} aria-label={`Re-drive ${queue.service}`}>
      <p>
        Move messages of <code>{queue.dlq}</code> back to <code>{queue.queue}</code>, where the {queue.service} service
        handles them again. Do it once what made them fail is fixed: a message that fails again returns here.
      </p>
      <div className="field">
        <label htmlFor={id}>Move at most (1 to {REDRIVE_MAX})</label>
        <input
          id={id}
          ref={ref}
          type="number"
          inputMode="numeric"
          min={1}
          max={REDRIVE_MAX}
          value={count}
          onChange={(e) => setCount(e.target.value)}
          aria-invalid={!valid}
        />
      </div>
      {redrive.isError && <ErrorMessage error={redrive.error} title="Nothing was moved" />}
      <div className="button-row">
        <button type="submit" className="button" disabled={!valid || redrive.isPending}>
          {redrive.isPending ? "Moving…" : "Confirm re-drive"}
        </button>
        <button type="button" className="button secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function QueueCard({ queue, onRedriven }: { queue: DeadLetterQueue; onRedriven: (moved: number) => void }) {
  const [redriving, setRedriving] = useState(false);
  const titleId = `dlq-${queue.service}`;
  return (
    <section className="card dlq" aria-labelledby={titleId} data-testid="dlq" data-service={queue.service} data-depth={queue.depth}>
      <h2 id={titleId}>
        {queue.service}{" "}
        <span className={`badge ${queue.depth > 0 ? "badge-bad" : "badge-ok"}`} data-testid="dlq-depth">
          {queue.depth === 0 ? "Empty" : `${queue.depth} message${queue.depth === 1 ? "" : "s"}`}
        </span>
      </h2>
      <p className="muted small">
        Dead-letter queue <code>{queue.dlq}</code> of <code>{queue.queue}</code>
      </p>
      {queue.messages.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label={`Dead letters of ${queue.service}`}>
          <table>
            <caption className="visually-hidden">Messages in the dead-letter queue of {queue.service}</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Error</th>
                <th scope="col">Receives</th>
                <th scope="col">Dead-lettered</th>
              </tr>
            </thead>
            <tbody>
              {queue.messages.map((m) => (
                <tr key={m.message_id} data-event-id={m.event_id ?? ""}>
                  <td>
                    {m.event_type ?? "Unknown type"}
                    <br />
                    <code className="muted small">{m.event_id ?? m.message_id}</code>
                  </td>
                  <td>{m.error ?? "No error recorded"}</td>
                  <td>{m.receive_count ?? "—"}</td>
                  <td>{formatDateTime(m.sent_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : queue.depth > 0 ? (
        <p className="muted small">The messages are being read or moved right now: refresh in a moment.</p>
      ) : (
        <p className="muted small">Nothing failed here.</p>
      )}
      {queue.depth > queue.messages.length && queue.messages.length > 0 && (
        <p className="muted small">
          Showing {queue.messages.length} of {queue.depth}.
        </p>
      )}
      {redriving ? (
        <Redrive
          queue={queue}
          onCancel={() => setRedriving(false)}
          onDone={(moved) => {
            setRedriving(false);
            onRedriven(moved);
          }}
        />
      ) : (
        <button
          type="button"
          className="button secondary small"
          disabled={queue.depth === 0}
          onClick={() => setRedriving(true)}
        >
          Re-drive…<span className="visually-hidden"> {queue.service}</span>
        </button>
      )}
    </section>
  );
}

export function DeadLetters() {
  const queryClient = useQueryClient();
  const [notice, setNotice] = useState<string | null>(null);
  const queues = useQuery({
    queryKey: ["dead-letters"],
    queryFn: () => api<{ queues: DeadLetterQueue[] }>("/admin/dead-letters", { query: { limit: PEEK } }),
    staleTime: 0,
  });
  const list = queues.data?.queues ?? [];
  const total = list.reduce((sum, q) => sum + q.depth, 0);

  return (
    <section>
      <PageTitle title="Dead-letter queues">Dead-letter queues</PageTitle>
      <p>
        Events a service could not handle after its retries, per service, with the error it recorded. Looking consumes
        nothing.
      </p>
      <div className="button-row">
        <button
          type="button"
          className="button secondary"
          onClick={() => {
            setNotice(null);
            void queues.refetch();
          }}
          disabled={queues.isFetching}
        >
          {queues.isFetching ? "Refreshing…" : "Refresh"}
        </button>
        {queues.isSuccess && (
          <span className="muted" data-testid="dlq-total" aria-live="polite">
            {total === 0 ? "Every queue is empty." : `${total} message${total === 1 ? "" : "s"} in all.`}
          </span>
        )}
      </div>
      {notice && <Notice tone="success">{notice}</Notice>}
      {queues.isPending && <Loading label="Reading the queues…" />}
      {queues.isError && <ErrorMessage error={queues.error} onRetry={() => void queues.refetch()} />}
      {queues.isSuccess && list.length === 0 && <Empty title="No service consumes a queue" />}
      <div className="dlq-list">
        {list.map((q) => (
          <QueueCard
            key={q.service}
            queue={q}
            onRedriven={(moved) => {
              setNotice(`Moved ${moved} message${moved === 1 ? "" : "s"} back to ${q.queue}.`);
              void queryClient.invalidateQueries({ queryKey: ["dead-letters"] });
            }}
          />
        ))}
      </div>
    </section>
  );
}
