import { useRef, useState, type DragEvent, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, uploadFile } from "../api/client";
import type { Stage, UploadAccepted, UploadView } from "../api/types";
import { useSession } from "../auth/session";
import { ErrorMessage, Loading, Notice, PageTitle } from "../components/status";
import { formatBytes, formatDate, formatDateTime, humanize } from "../format";

const STAGES: { id: Stage; label: string; about: string }[] = [
  { id: "received", label: "Received", about: "Your file arrived safely." },
  { id: "ingested", label: "Ingested", about: "Your data was checked and stored." },
  { id: "analyzed", label: "Analyzed", about: "Signals and your persona were computed." },
  { id: "recommended", label: "Recommended", about: "Recommendations were written for review." },
];
const TERMINAL: Stage[] = ["recommended", "failed"];
const ACCEPT = ".json,.jsonl,.ndjson,.csv,.zip,application/json,application/x-ndjson,text/csv,application/zip";

function stageOf(upload: UploadView, userId: string): { stage: Stage; reason: string | null } {
  const mine = upload.users.find((u) => u.user_id === userId);
  if (mine) return { stage: mine.stage, reason: mine.reason };
  return { stage: upload.status, reason: null };
}

export function StageTracker({ upload, userId }: { upload: UploadView; userId: string }) {
  const { stage, reason } = stageOf(upload, userId);
  const reached = STAGES.findIndex((s) => s.id === stage);
  const failed = stage === "failed";
  return (
    <div className="card" aria-labelledby="tracker-title">
      <h2 id="tracker-title">Progress</h2>
      <ol className="tracker" aria-live="polite">
        {STAGES.map((s, index) => {
          const state = index <= reached ? "done" : index === reached + 1 && !failed ? "active" : "waiting";
          return (
            <li
              key={s.id}
              className={`tracker-step ${state}`}
              aria-current={index === reached ? "step" : undefined}
              data-stage={s.id}
              data-state={state}
            >
              <span className="tracker-dot" aria-hidden="true">
                {state === "done" ? "✓" : index + 1}
              </span>
              <span>
                <strong>{s.label}</strong>
                <span className="visually-hidden">
                  {state === "done" ? ": done" : state === "active" ? ": in progress" : ": waiting"}
                </span>
                <br />
                <span className="muted small">{s.about}</span>
              </span>
            </li>
          );
        })}
      </ol>
      {failed &&
        (upload.status === "failed" && upload.error?.message ? (
          // The upload itself was refused once parsed: every problem with its path, as a 422 would list them.
          <ErrorMessage
            title="The upload was not accepted"
            error={
              new ApiError(422, String(upload.error.code ?? "upload_failed"), String(upload.error.message), upload.error.details)
            }
          />
        ) : (
          <div className="alert alert-error" role="alert">
            <p>Processing failed{reason ? `: ${reason}` : "."}</p>
            {upload.error?.message && <p>{String(upload.error.message)}</p>}
          </div>
        ))}
      {!TERMINAL.includes(stage) && <Loading label="Working on it — this page updates by itself." />}
      {stage === "analyzed" && (
        <p>
          Your signals are ready: <Link to="/me/persona">see your persona</Link>.
        </p>
      )}
      {stage === "recommended" && (
        <Notice tone="success">
          Done. <Link to="/me/persona">See your persona</Link> and{" "}
          <Link to="/me/recommendations">your recommendations</Link> (a reviewer approves each one before it
          appears).
        </Notice>
      )}
      <dl className="facts small">
        <div>
          <dt>Upload</dt>
          <dd>
            <code>{upload.upload_id}</code>
          </dd>
        </div>
        <div>
          <dt>Received</dt>
          <dd>{formatDateTime(upload.created_at)}</dd>
        </div>
        {upload.as_of && (
          <div>
            <dt>Data as of</dt>
            <dd>{formatDate(upload.as_of)}</dd>
          </div>
        )}
        {Object.entries(upload.counts).map(([name, count]) => (
          <div key={name}>
            <dt>{humanize(name)}</dt>
            <dd>{count.toLocaleString("en-US")}</dd>
          </div>
        ))}
      </dl>
      {upload.notes.length > 0 && (
        <ul className="small">
          {upload.notes.map((note) => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Upload() {
  const session = useSession();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const uploadId = params.get("upload");
  const [file, setFile] = useState<File | null>(null);
  const [dragging, setDragging] = useState(false);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [accepted, setAccepted] = useState<UploadAccepted | null>(null);
  const abort = useRef<AbortController | null>(null);
  const input = useRef<HTMLInputElement>(null);

  const tracked = useQuery({
    queryKey: ["upload", uploadId],
    queryFn: () => api<UploadView>(`/uploads/${encodeURIComponent(uploadId ?? "")}`),
    enabled: Boolean(uploadId),
    refetchInterval: (query) => {
      const data = query.state.data;
      if (query.state.error) return false;
      return data && TERMINAL.includes(stageOf(data, session.userId).stage) ? false : 1000;
    },
  });

  function choose(files: FileList | null) {
    const chosen = files?.[0] ?? null;
    setFile(chosen);
    setError(null);
    setProgress(null);
  }

  function onDrop(event: DragEvent<HTMLDivElement>) {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer.files.length > 0) choose(event.dataTransfer.files);
  }

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (!file || sending) return;
    setSending(true);
    setError(null);
    setAccepted(null);
    setProgress({ loaded: 0, total: file.size });
    abort.current = new AbortController();
    try {
      const result = await uploadFile(
        file,
        (loaded, total) => setProgress({ loaded, total }),
        abort.current.signal,
      );
      setAccepted(result);
      setFile(null);
      if (input.current) input.current.value = "";
      void queryClient.invalidateQueries({ queryKey: ["profile", session.userId] });
      setParams({ upload: result.upload_id }, { replace: false });
    } catch (exc) {
      if (exc instanceof DOMException && exc.name === "AbortError") setError(new Error("Upload cancelled."));
      else setError(exc);
    } finally {
      setSending(false);
      abort.current = null;
    }
  }

  const percent = progress && progress.total > 0 ? Math.round((progress.loaded / progress.total) * 100) : 0;

  return (
    <section>
      <PageTitle title="Upload">Upload your data</PageTitle>
      <p>
        Upload Plaid-style accounts, transactions and liabilities: JSON (one user, or the bodies Plaid's API
        returns), JSON Lines, CSV files, or a zip of them. Every problem in a file is listed at once, and nothing of a
        rejected file is kept. You need to have <Link to="/me/consent">given consent</Link> first.
      </p>
      <form className="card form" onSubmit={(e) => void onSubmit(e)}>
        <div
          className={`dropzone ${dragging ? "dragging" : ""}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          data-testid="dropzone"
        >
          <p aria-hidden="true" className="dropzone-hint">
            Drop a file here, or
          </p>
          <label htmlFor="upload-file">Choose a file to upload</label>
          <input
            ref={input}
            id="upload-file"
            name="file"
            type="file"
            accept={ACCEPT}
            onChange={(e) => choose(e.target.files)}
            aria-describedby="upload-chosen"
          />
          <p id="upload-chosen" className="small">
            {file ? `Selected: ${file.name} (${formatBytes(file.size)})` : "No file selected."}
          </p>
        </div>
        {progress && sending && (
          <div className="field">
            <label htmlFor="upload-progress">Uploading… {percent} %</label>
            <progress id="upload-progress" max={100} value={percent}>
              {percent} %
            </progress>
          </div>
        )}
        {error !== null && <ErrorMessage error={error} title="The upload was not accepted" />}
        <div className="button-row">
          <button type="submit" className="button" disabled={!file || sending}>
            {sending ? "Uploading…" : "Upload"}
          </button>
          {sending && (
            <button type="button" className="button secondary" onClick={() => abort.current?.abort()}>
              Cancel
            </button>
          )}
        </div>
      </form>
      {accepted &&
        (Object.keys(accepted.counts).length > 0 ? (
          <Notice tone="success">
            Upload accepted:{" "}
            {Object.entries(accepted.counts)
              .map(([name, count]) => `${count.toLocaleString("en-US")} ${humanize(name).toLowerCase()}`)
              .join(", ")}
            .
          </Notice>
        ) : (
          <Notice tone="success">
            Upload received{accepted.size_bytes ? ` (${formatBytes(accepted.size_bytes)})` : ""}: it is being checked
            now, and the progress below updates by itself.
          </Notice>
        ))}
      {uploadId && tracked.isPending && <Loading label="Loading the upload's progress…" />}
      {uploadId && tracked.isError && (
        <ErrorMessage error={tracked.error} title="Could not load the upload's progress" onRetry={() => void tracked.refetch()} />
      )}
      {tracked.data && <StageTracker upload={tracked.data} userId={session.userId} />}
    </section>
  );
}
