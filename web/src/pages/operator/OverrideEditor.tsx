// The override editor of one review item: edit its title, body and rationale, or pick one of the catalog
// items the recommender offered in its place; "Check" runs the guardrails (tone, grounding against the
// item's facts, disclosure, length) without saving, and Save is possible once the text as it stands has
// passed. The API checks again on save; a refusal (422 guardrails_failed) shows its report the same way.
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import { useMutation } from "@tanstack/react-query";
import { api, ApiError } from "../../api/client";
import type {
  Alternative,
  CitableFact,
  EditedText,
  OverrideCheckResult,
  OverrideReport,
  OverrideResult,
  ReviewItem,
} from "../../api/types";
import { ErrorMessage } from "../../components/status";
import { humanize } from "../../format";

type Draft = { mode: "edit"; text: EditedText } | { mode: "alternative"; catalogItemId: string };

const FIELD_NAMES: Record<string, string> = {
  title: "Title",
  body: "Body",
  rationale: "Rationale",
  title_rationale: "Title or rationale",
};

function fieldName(field: string | undefined): string {
  return field ? (FIELD_NAMES[field] ?? humanize(field)) : "Text";
}

function draftKey(draft: Draft): string {
  return JSON.stringify(draft);
}

function payload(item: ReviewItem, draft: Draft): Record<string, unknown> {
  return draft.mode === "edit"
    ? { recommendation_id: item.recommendation_id, text: draft.text }
    : { recommendation_id: item.recommendation_id, catalog_item_id: draft.catalogItemId };
}

function CheckLine({ passed, name, children }: { passed: boolean; name: string; children?: ReactNode }) {
  return (
    <li className={passed ? "check-ok" : "check-failed"} data-check={name.toLowerCase()} data-passed={passed}>
      <span className={`badge ${passed ? "badge-ok" : "badge-bad"}`}>{passed ? "Passed" : "Failed"}</span>{" "}
      <strong>{name}</strong>
      {children}
    </li>
  );
}

/** A guardrail report in words: each of the four checks, and what failed. */
export function GuardrailReport({ report, stale }: { report: OverrideReport; stale?: boolean }) {
  const limits = report.length?.limits ?? {};
  const lengthFields = Object.keys(limits);
  return (
    <div className={`card guardrail-report ${report.passed ? "report-ok" : "report-failed"}`} data-testid="guardrail-report">
      <p className="alert-title">
        {report.passed
          ? "Every guardrail check passed."
          : `The text fails the guardrails: ${report.reasons.map(humanize).join(", ")}.`}
        {stale && " (The text has changed since: check again.)"}
      </p>
      <ul className="checks">
        <CheckLine passed={report.tone.passed} name="Tone">
          {report.tone.hits.length > 0 ? (
            <ul>
              {report.tone.hits.map((hit, n) => (
                <li key={n}>
                  {fieldName(hit.field)}: “{hit.match}” is {humanize(hit.rule).toLowerCase()} language
                </li>
              ))}
            </ul>
          ) : (
            <span>: no shaming or judgemental language.</span>
          )}
        </CheckLine>
        <CheckLine passed={report.grounding.passed} name="Grounding">
          {report.grounding.checked_by === "recommender" ? (
            <span>: checked by the recommender when it wrote this catalog item for the user.</span>
          ) : report.grounding.claims.length === 0 ? (
            <span>: the text states no figure.</span>
          ) : (
            <ul>
              {report.grounding.claims.map((claim, n) => (
                <li key={n} className={claim.fact ? "" : "unmatched"}>
                  {fieldName(claim.field)}: “{claim.text}”{" "}
                  {claim.fact
                    ? claim.fact === "catalog_body"
                      ? "is stated by the catalog's own text"
                      : `matches ${claim.fact}`
                    : "matches none of this item's figures"}
                </li>
              ))}
            </ul>
          )}
        </CheckLine>
        <CheckLine passed={report.disclosure.passed} name="Disclosure">
          <span>
            {report.disclosure.passed ? ": the standard disclosure is shown." : ": the standard disclosure is missing."}
          </span>
        </CheckLine>
        <CheckLine passed={report.length.passed} name="Length">
          <ul>
            {lengthFields.map((field) => {
              const [low, high] = limits[field] ?? [0, 0];
              const length = Number(report.length[field] ?? 0);
              const ok = length >= low && length <= high;
              return (
                <li key={field} className={ok ? "" : "unmatched"}>
                  {fieldName(field)}: {length} characters (allowed {low} to {high}){ok ? "" : " — out of bounds"}
                </li>
              );
            })}
          </ul>
        </CheckLine>
      </ul>
    </div>
  );
}

function Facts({ facts }: { facts: CitableFact[] }) {
  if (facts.length === 0) return <p className="muted small">This item has no figure it may cite: a new figure fails grounding.</p>;
  return (
    <ul className="fact-list" aria-label="Figures this item may cite">
      {facts.map((fact) => (
        <li key={fact.key}>
          <strong>{fact.display}</strong> <span className="muted small">({humanize(fact.key.replace(/\./g, " "))})</span>
        </li>
      ))}
    </ul>
  );
}

function AlternativeOption({
  alternative,
  name,
  checked,
  onChange,
}: {
  alternative: Alternative;
  name: string;
  checked: boolean;
  onChange: () => void;
}) {
  const id = `${name}-${alternative.catalog_item_id}`;
  return (
    <li className={`alternative ${checked ? "selected" : ""}`}>
      <input type="radio" id={id} name={name} checked={checked} onChange={onChange} />
      <label htmlFor={id}>
        <strong>{alternative.title}</strong>
        <span className="muted small"> · {alternative.catalog_item_id}</span>
        <span className="alternative-rationale">{alternative.rationale}</span>
      </label>
    </li>
  );
}

export function OverrideEditor({
  item,
  onDone,
  onCancel,
}: {
  item: ReviewItem;
  onDone: (result: OverrideResult) => void;
  onCancel: () => void;
}) {
  const uid = useId();
  const shown = item.override ?? item;
  const alternatives = item.alternatives ?? [];
  const [mode, setMode] = useState<"edit" | "alternative">("edit");
  const [text, setText] = useState<EditedText>({ title: shown.title, body: shown.body, rationale: shown.rationale });
  const [choice, setChoice] = useState<string>(alternatives[0]?.catalog_item_id ?? "");
  const [reason, setReason] = useState("");
  const [checked, setChecked] = useState<{ key: string; report: OverrideReport } | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const reportRef = useRef<HTMLDivElement>(null);

  useEffect(() => headingRef.current?.focus(), []);

  const draft: Draft = mode === "edit" ? { mode, text } : { mode, catalogItemId: choice };
  const key = draftKey(draft);
  const current = checked !== null && checked.key === key;

  const check = useMutation({
    mutationFn: (d: Draft) =>
      api<OverrideCheckResult>("/operator/override/check", { method: "POST", body: payload(item, d) }),
    onSuccess: (answer, d) => {
      setChecked({ key: draftKey(d), report: answer.report });
      reportRef.current?.focus();
    },
  });
  const save = useMutation({
    mutationFn: (d: Draft) =>
      api<OverrideResult>("/operator/override", {
        method: "POST",
        body: { ...payload(item, d), reason: reason.trim() },
      }),
    onSuccess: onDone,
    onError: (error, d) => {
      if (error instanceof ApiError && error.code === "guardrails_failed" && error.details) {
        setChecked({ key: draftKey(d), report: error.details as OverrideReport });
      }
    },
  });

  function onCheck() {
    save.reset();
    check.mutate(draft);
  }

  function onSave(event: FormEvent) {
    event.preventDefault();
    if (current && checked?.report.passed && reason.trim()) save.mutate(draft);
  }

  const refused = save.error instanceof ApiError && save.error.code === "guardrails_failed";
  const canSave = current && checked?.report.passed === true && reason.trim().length > 0 && !save.isPending;
  const titleId = `${uid}-title`;

  return (
    <form className="override-editor" onSubmit={onSave} aria-labelledby={titleId} data-testid="override-editor">
      <h3 id={titleId} ref={headingRef} tabIndex={-1}>
        Override “{item.title}”
      </h3>
      <p className="muted small">
        The user will see this text instead, with the standard disclosure. Check it against the guardrails, then save
        with a reason (recorded in the audit log).
      </p>

      <h4>Figures this text may cite</h4>
      <Facts facts={item.facts ?? []} />

      {alternatives.length > 0 && (
        <fieldset className="segmented">
          <legend>Replace with</legend>
          <label className={mode === "edit" ? "selected" : ""}>
            <input type="radio" name={`${uid}-mode`} checked={mode === "edit"} onChange={() => setMode("edit")} />
            Edited text
          </label>
          <label className={mode === "alternative" ? "selected" : ""}>
            <input
              type="radio"
              name={`${uid}-mode`}
              checked={mode === "alternative"}
              onChange={() => setMode("alternative")}
            />
            Another catalog item ({alternatives.length})
          </label>
        </fieldset>
      )}

      {mode === "edit" ? (
        <div className="form">
          <div className="field">
            <label htmlFor={`${uid}-t`}>Title</label>
            <input
              id={`${uid}-t`}
              type="text"
              value={text.title}
              maxLength={10_000}
              onChange={(e) => setText({ ...text, title: e.target.value })}
            />
          </div>
          <div className="field">
            <label htmlFor={`${uid}-b`}>Body</label>
            <textarea
              id={`${uid}-b`}
              rows={5}
              value={text.body}
              maxLength={10_000}
              onChange={(e) => setText({ ...text, body: e.target.value })}
            />
          </div>
          <div className="field">
            <label htmlFor={`${uid}-r`}>Rationale (“why you see this”)</label>
            <textarea
              id={`${uid}-r`}
              rows={3}
              value={text.rationale}
              maxLength={10_000}
              onChange={(e) => setText({ ...text, rationale: e.target.value })}
            />
          </div>
        </div>
      ) : (
        <fieldset>
          <legend>Catalog items offered for this user</legend>
          <ul className="alternatives">
            {alternatives.map((a) => (
              <AlternativeOption
                key={a.catalog_item_id}
                alternative={a}
                name={`${uid}-alt`}
                checked={choice === a.catalog_item_id}
                onChange={() => setChoice(a.catalog_item_id)}
              />
            ))}
          </ul>
        </fieldset>
      )}

      <div className="button-row">
        <button type="button" className="button secondary" onClick={onCheck} disabled={check.isPending}>
          {check.isPending ? "Checking…" : "Check"}
        </button>
        <span className="muted small" aria-live="polite">
          {current ? (checked?.report.passed ? "Checked: ready to save." : "Checked: fix what failed.") : "Not checked yet."}
        </span>
      </div>
      {check.isError && <ErrorMessage error={check.error} title="The check could not run" />}
      <div ref={reportRef} tabIndex={-1} aria-live="polite" className="report-region">
        {checked && <GuardrailReport report={checked.report} stale={!current} />}
      </div>

      <div className="field">
        <label htmlFor={`${uid}-why`}>Reason for the override (required; recorded in the audit log)</label>
        <textarea id={`${uid}-why`} rows={2} maxLength={2000} value={reason} onChange={(e) => setReason(e.target.value)} />
      </div>
      {save.isError && (
        <ErrorMessage
          error={save.error}
          title={refused ? "Not saved: the text fails the guardrails (see the report above)" : "The override was not saved"}
        />
      )}
      <div className="button-row">
        <button type="submit" className="button" disabled={!canSave}>
          {save.isPending ? "Saving…" : "Save override"}
        </button>
        <button type="button" className="button secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {!current && <p className="muted small">Save is possible once the text as it stands has passed a check.</p>}
    </form>
  );
}
