// Persona rule-set versions (admins): the list and which one is active, one version's content, a line diff
// of two versions, adding a version (YAML or JSON) and activating one (which re-scores every consented user).
import { useEffect, useRef, useState, type ChangeEvent, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../../api/client";
import type { RuleSetDetail, RuleSetListed } from "../../api/types";
import { lineDiff, withContext } from "../../components/diff";
import { Empty, ErrorMessage, Loading, Notice, PageTitle } from "../../components/status";
import { formatDateTime } from "../../format";

const MAX_FILE = 512 * 1024;

/** JSON with keys sorted at every level: two versions' rule sets line up for a diff. */
export function canonical(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2);
}

/** A version's text as written: the packaged file's text, else its document (added versions are stored parsed). */
function contentOf(detail: RuleSetDetail): string {
  return detail.source_text ?? JSON.stringify(detail.document, null, 2);
}

function useRuleSet(version: string | null) {
  return useQuery({
    queryKey: ["rule-set", version],
    queryFn: () => api<RuleSetDetail>(`/personas/rules/${encodeURIComponent(version ?? "")}`),
    enabled: Boolean(version),
    staleTime: Infinity, // a version never changes (only which one is active)
  });
}

function Viewer({ version, onClose }: { version: string; onClose: () => void }) {
  const detail = useRuleSet(version);
  return (
    <section className="card" aria-labelledby="ruleset-view-title" data-testid="ruleset-view">
      <h2 id="ruleset-view-title">Version {version}</h2>
      {detail.isPending && <Loading label="Loading the version…" />}
      {detail.isError && <ErrorMessage error={detail.error} onRetry={() => void detail.refetch()} />}
      {detail.isSuccess && (
        <>
          <p className="muted small">
            {detail.data.packaged ? "Packaged with the features service" : `Added by ${detail.data.source}`}
            {detail.data.active ? " · active" : ""}
            {detail.data.activated_at ? ` · last activated ${formatDateTime(detail.data.activated_at)}` : ""}
          </p>
          <pre className="json" tabIndex={0} role="region" aria-label={`The content of ${version}`}>
            {contentOf(detail.data)}
          </pre>
        </>
      )}
      <button type="button" className="button secondary small" onClick={onClose}>
        Close
      </button>
    </section>
  );
}

function Diff({ from, to }: { from: string; to: string }) {
  const left = useRuleSet(from);
  const right = useRuleSet(to);
  if (left.isPending || right.isPending) return <Loading label="Loading both versions…" />;
  if (left.isError) return <ErrorMessage error={left.error} title={`Could not load ${from}`} />;
  if (right.isError) return <ErrorMessage error={right.error} title={`Could not load ${to}`} />;
  const lines = lineDiff(canonical(left.data.rule_set ?? left.data.document), canonical(right.data.rule_set ?? right.data.document));
  const added = lines.filter((l) => l.op === "added").length;
  const removed = lines.filter((l) => l.op === "removed").length;
  if (added === 0 && removed === 0) {
    return (
      <p data-testid="diff-summary">
        {from} and {to} evaluate the same rules: no difference.
      </p>
    );
  }
  return (
    <>
      <p data-testid="diff-summary">
        From {from} to {to}: {added} line{added === 1 ? "" : "s"} added, {removed} removed.
      </p>
      <div className="table-wrap" tabIndex={0} role="region" aria-label={`Differences from ${from} to ${to}`}>
        <table className="diff" data-testid="diff">
          <caption className="visually-hidden">
            Lines of {from} and {to}: removed lines are marked “−”, added lines “+”
          </caption>
          <thead>
            <tr>
              <th scope="col">{from}</th>
              <th scope="col">{to}</th>
              <th scope="col">
                <span className="visually-hidden">Change</span>
              </th>
              <th scope="col">Line</th>
            </tr>
          </thead>
          <tbody>
            {withContext(lines).map((line, n) =>
              line.op === "skip" ? (
                <tr key={n} className="diff-skip">
                  <td colSpan={4}>
                    … {line.count} unchanged line{line.count === 1 ? "" : "s"}
                  </td>
                </tr>
              ) : (
                <tr key={n} className={`diff-${line.op}`} data-op={line.op}>
                  <td className="diff-no">{line.oldNo ?? ""}</td>
                  <td className="diff-no">{line.newNo ?? ""}</td>
                  <td className="diff-mark">
                    {line.op === "added" ? "+" : line.op === "removed" ? "−" : ""}
                    <span className="visually-hidden">
                      {line.op === "added" ? "added" : line.op === "removed" ? "removed" : ""}
                    </span>
                  </td>
                  <td>
                    <code className="diff-text">{line.text}</code>
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
      </div>
    </>
  );
}

function AddVersion({ active, onAdded }: { active: string | null; onAdded: (version: string) => void }) {
  const queryClient = useQueryClient();
  const [text, setText] = useState("");
  const [fileError, setFileError] = useState<string | null>(null);
  const add = useMutation({
    mutationFn: () =>
      api<{ version: string }>("/personas/rules", {
        method: "POST",
        // JSON is YAML too: the API parses either from an application/yaml body.
        text: { body: text, contentType: "application/yaml" },
      }),
    onSuccess: (answer) => {
      setText("");
      void queryClient.invalidateQueries({ queryKey: ["rule-sets"] });
      onAdded(answer.version);
    },
  });
  const start = useMutation({
    mutationFn: () => api<RuleSetDetail>(`/personas/rules/${encodeURIComponent(active ?? "")}`),
    onSuccess: (detail) => setText(contentOf(detail)),
  });

  function onFile(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    setFileError(null);
    if (!file) return;
    if (file.size > MAX_FILE) {
      setFileError(`${file.name} is larger than ${MAX_FILE / 1024} KB: a rule set is a small YAML or JSON document.`);
      return;
    }
    void file.text().then(setText, () => setFileError(`${file.name} could not be read.`));
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (text.trim()) add.mutate();
  }

  return (
    <form className="card form" onSubmit={onSubmit} aria-labelledby="ruleset-add-title">
      <h2 id="ruleset-add-title">Add a version</h2>
      <p className="muted small">
        A rule-set document in YAML or JSON with a new <code>version</code> name; it is validated against the signals.
        Adding a version does not activate it.
      </p>
      <div className="button-row">
        <button
          type="button"
          className="button secondary small"
          disabled={!active || start.isPending}
          onClick={() => start.mutate()}
        >
          {start.isPending ? "Loading…" : `Start from the active version${active ? ` (${active})` : ""}`}
        </button>
        <label className="button secondary small file-button">
          Choose a file
          <input type="file" accept=".yaml,.yml,.json,application/json,application/yaml,text/yaml" onChange={onFile} />
        </label>
      </div>
      {start.isError && <ErrorMessage error={start.error} title="Could not load the active version" />}
      {fileError && (
        <div className="alert alert-error" role="alert">
          {fileError}
        </div>
      )}
      <div className="field">
        <label htmlFor="ruleset-text">Rule-set document (YAML or JSON)</label>
        <textarea
          id="ruleset-text"
          className="code-input"
          rows={14}
          spellCheck={false}
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
      </div>
      {add.isError && <ErrorMessage error={add.error} title="The version was not added" />}
      <div className="button-row">
        <button type="submit" className="button" disabled={!text.trim() || add.isPending}>
          {add.isPending ? "Adding…" : "Add version"}
        </button>
      </div>
    </form>
  );
}

function Activate({ version, onDone, onCancel }: { version: string; onDone: (v: string) => void; onCancel: () => void }) {
  const queryClient = useQueryClient();
  const confirmRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => confirmRef.current?.focus(), []);
  const activate = useMutation({
    mutationFn: () =>
      api<{ version: string; status: string }>(`/personas/rules/${encodeURIComponent(version)}/activate`, {
        method: "POST",
      }),
    onSuccess: (answer) => {
      void queryClient.invalidateQueries({ queryKey: ["rule-sets"] });
      void queryClient.invalidateQueries({ queryKey: ["rule-set"] });
      onDone(answer.version);
    },
  });
  return (
    <div className="card confirm danger-zone" role="group" aria-labelledby="activate-title">
      <h2 id="activate-title" ref={confirmRef} tabIndex={-1}>
        Activate {version}?
      </h2>
      <p>
        Every consented user is re-scored with it: their personas may change, and new recommendations are generated
        and queued for review. The persona history keeps the assignments made under the version active now.
      </p>
      {activate.isError && <ErrorMessage error={activate.error} title="Nothing was activated" />}
      <div className="button-row">
        <button type="button" className="button danger" onClick={() => activate.mutate()} disabled={activate.isPending}>
          {activate.isPending ? "Activating…" : `Yes, activate ${version}`}
        </button>
        <button type="button" className="button secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

export function RuleSets() {
  const [params, setParams] = useSearchParams();
  const [notice, setNotice] = useState<string | null>(null);
  const [activating, setActivating] = useState<string | null>(null);
  const view = params.get("view");
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const [draftFrom, setDraftFrom] = useState(from);
  const [draftTo, setDraftTo] = useState(to);

  const list = useQuery({
    queryKey: ["rule-sets"],
    queryFn: () => api<{ items: RuleSetListed[] }>("/personas/rules"),
  });
  const items = list.data?.items ?? [];
  const active = items.find((i) => i.active)?.version ?? null;

  useEffect(() => {
    setDraftFrom(from);
    setDraftTo(to);
  }, [from, to]);

  function setParam(changes: Record<string, string | null>) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  }

  function onCompare(event: FormEvent) {
    event.preventDefault();
    setParam({ from: draftFrom, to: draftTo });
  }

  return (
    <section>
      <PageTitle title="Persona rule sets">Persona rule sets</PageTitle>
      <p>
        The rules that assign personas, as versions. One is active; activating another re-scores every consented user.
      </p>
      {notice && <Notice tone="success">{notice}</Notice>}
      {list.isPending && <Loading label="Loading the versions…" />}
      {list.isError && <ErrorMessage error={list.error} onRetry={() => void list.refetch()} />}
      {list.isSuccess && items.length === 0 && <Empty title="No rule-set version" />}
      {items.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Rule-set versions">
          <table data-testid="rule-sets">
            <caption className="visually-hidden">Rule-set versions</caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Source</th>
                <th scope="col">State</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.version} data-version={i.version}>
                  <td>
                    <code>{i.version}</code>
                  </td>
                  <td>{i.source === "packaged" ? "Packaged" : i.source}</td>
                  <td>
                    {i.active ? <span className="badge badge-ok">Active</span> : <span className="badge">Inactive</span>}
                    {i.activated_at ? <span className="muted small"> since {formatDateTime(i.activated_at)}</span> : ""}
                  </td>
                  <td>
                    <div className="button-row">
                      <button
                        type="button"
                        className="button secondary small"
                        onClick={() => setParam({ view: i.version })}
                      >
                        View<span className="visually-hidden"> {i.version}</span>
                      </button>
                      {!i.active && (
                        <button
                          type="button"
                          className="button secondary small"
                          onClick={() => {
                            setNotice(null);
                            setActivating(i.version);
                          }}
                        >
                          Activate…<span className="visually-hidden"> {i.version}</span>
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {activating && (
        <Activate
          version={activating}
          onCancel={() => setActivating(null)}
          onDone={(v) => {
            setActivating(null);
            setNotice(`${v} is now active: every consented user is being re-scored.`);
          }}
        />
      )}
      {view && <Viewer version={view} onClose={() => setParam({ view: null })} />}

      {items.length > 0 && (
        <section className="card" aria-labelledby="ruleset-diff-title">
          <h2 id="ruleset-diff-title">Compare two versions</h2>
          <p className="muted small">The rule sets as evaluated (defaults applied, keys sorted), line by line.</p>
          <form className="filters" onSubmit={onCompare}>
            <div className="field">
              <label htmlFor="diff-from">From version</label>
              <select id="diff-from" value={draftFrom} onChange={(e) => setDraftFrom(e.target.value)}>
                <option value="">Choose…</option>
                {items.map((i) => (
                  <option key={i.version} value={i.version}>
                    {i.version}
                    {i.active ? " (active)" : ""}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="diff-to">To version</label>
              <select id="diff-to" value={draftTo} onChange={(e) => setDraftTo(e.target.value)}>
                <option value="">Choose…</option>
                {items.map((i) => (
                  <option key={i.version} value={i.version}>
                    {i.version}
                    {i.active ? " (active)" : ""}
                  </option>
                ))}
              </select>
            </div>
            <div className="button-row">
              <button type="submit" className="button secondary" disabled={!draftFrom || !draftTo}>
                Compare
              </button>
            </div>
          </form>
          {from && to && <Diff from={from} to={to} />}
        </section>
      )}

      <AddVersion
        active={active}
        onAdded={(version) => {
          setNotice(`Added version ${version}. It is not active until you activate it.`);
          if (active) setParam({ from: active, to: version });
        }}
      />
    </section>
  );
}
