import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { OverrideReport, ReviewItem } from "../../api/types";
import { apiError, renderPage, signIn, stubApi, type Call, type FakeApi } from "../../test/harness";
import { Review } from "./Review";

function item(id: string, title: string, extra: Partial<ReviewItem> = {}): ReviewItem {
  return {
    recommendation_id: id,
    user_id: "user-1",
    upload_id: "up-1",
    persona: "high_utilization",
    kind: "education",
    title,
    body: `${title}: the body.`,
    rationale: `Your Visa ending in 4523 is at 68 % utilization (${title}).`,
    disclosure: "This is educational content, not financial advice.",
    catalog_item_id: `edu-${id}`,
    catalog_version: "1",
    rank: 1,
    guardrails: { tone: true, grounding: true, disclosure: true, length: true },
    guardrails_passed: true,
    generator: "template",
    fell_back_to_template: false,
    priority: 1,
    status: "pending",
    flagged: false,
    created_at: "2026-01-10T09:00:00Z",
    decided_by: null,
    decided_at: null,
    reason: null,
    facts: [
      { key: "card.utilization", unit: "percent", value: 0.68, display: "68 %" },
      { key: "card.balance", unit: "usd", value: 3400, display: "$3,400" },
    ],
    alternatives: [
      {
        catalog_item_id: "edu-autopay",
        catalog_version: "1",
        title: "Set up autopay",
        body: "Autopay keeps payments on time.",
        rationale: "A payment was late this month.",
        disclosure: "This is educational content, not financial advice.",
      },
    ],
    override: null,
    ...extra,
  };
}

const ITEMS = [
  item("rec-a", "Bring utilization under 30 %"),
  item("rec-b", "Plan your card payments", { kind: "offer", guardrails_passed: false, guardrails: { tone: false } }),
  item("rec-c", "Build a one-month buffer", { persona: "cash_flow_balancer" }),
];
const COUNTS = { pending: 3, flagged: 0, approved: 5, rejected: 1, overridden: 2 };

/** The queue: GET /operator/review answers the items still pending (decisions remove them). */
function queueApi(items: ReviewItem[] = ITEMS): FakeApi {
  const decided = new Set<string>();
  const decide = (decision: string) => (call: Call) => {
    const ids = (call.body as { recommendation_ids: string[] }).recommendation_ids;
    ids.forEach((id) => decided.add(id));
    return { body: { decision, items: items.filter((i) => ids.includes(i.recommendation_id)) } };
  };
  return stubApi()
    .on("GET /operator/review", () => ({
      body: { items: items.filter((i) => !decided.has(i.recommendation_id)), next_cursor: null, counts: COUNTS },
    }))
    .on("POST /operator/approve", decide("approved"))
    .on("POST /operator/reject", decide("rejected"))
    .on("POST /operator/flag", decide("flagged"));
}

function renderReview(path = "/operator/review") {
  signIn("op-1", ["operator"]);
  return renderPage(<Review />, { path, route: "/operator/review", role: "operator" });
}

function lastQuery(api: FakeApi): Record<string, string> {
  const calls = api.called("GET /operator/review");
  return Object.fromEntries(calls[calls.length - 1]!.query);
}

function select(title: string): HTMLInputElement {
  return screen.getByRole("checkbox", { name: `Select ${title}` }) as HTMLInputElement;
}

function button(name: string | RegExp): HTMLButtonElement {
  return screen.getByRole("button", { name }) as HTMLButtonElement;
}

async function shownTitles(): Promise<string[]> {
  const list = await screen.findByRole("list", { name: "Review items" });
  return within(list)
    .getAllByTestId("review-item")
    .map((li) => li.querySelector(".review-title")?.textContent?.replace(/^Select /, "") ?? "");
}

describe("review queue: filters and counts", () => {
  it("asks for the pending items, newest first, and shows the counts per status", async () => {
    const api = queueApi();
    renderReview();

    expect(await shownTitles()).toEqual(ITEMS.map((i) => i.title));
    expect(lastQuery(api)).toEqual({ status: "pending", sort: "date", limit: "50" });
    expect(screen.getByTestId("count-pending").textContent).toBe("3");
    expect(screen.getByTestId("count-approved").textContent).toBe("5");
    expect(screen.getByTestId("count-overridden").textContent).toBe("2"); // a status beyond the usual four
    expect(screen.getByRole("option", { name: "Approved (5)" })).toBeTruthy();
    expect(within(screen.getAllByTestId("review-item")[1]!).getByText("Guardrails failed: Tone")).toBeTruthy();
  });

  it("sends each filter to the API and keeps it in the address", async () => {
    const api = queueApi();
    const { user, router } = renderReview();
    await shownTitles();

    await user.selectOptions(screen.getByLabelText("Type"), "offer");
    await waitFor(() => expect(lastQuery(api).kind).toBe("offer"));
    await user.selectOptions(screen.getByLabelText("Persona"), "cash_flow_balancer");
    await waitFor(() => expect(lastQuery(api).persona).toBe("cash_flow_balancer"));
    await user.selectOptions(screen.getByLabelText("Sort by"), "priority");
    await waitFor(() => expect(lastQuery(api).sort).toBe("priority"));
    await user.type(screen.getByLabelText("User id"), "user-42");
    await user.click(button("Apply"));
    await waitFor(() => expect(lastQuery(api).user_id).toBe("user-42"));
    await user.click(button(/^Approved/));
    await waitFor(() => expect(lastQuery(api)).toEqual({
      status: "approved",
      kind: "offer",
      persona: "cash_flow_balancer",
      user_id: "user-42",
      sort: "priority",
      limit: "50",
    }));
    expect(button(/^Approved/).getAttribute("aria-pressed")).toBe("true");
    expect(Object.fromEntries(new URLSearchParams(router.state.location.search))).toEqual({
      kind: "offer",
      persona: "cash_flow_balancer",
      sort: "priority",
      user_id: "user-42",
      status: "approved",
    });

    await user.selectOptions(screen.getByLabelText("Status"), "all");
    await waitFor(() => expect(lastQuery(api).status).toBeUndefined());
  });

  it("reads its filters from the address", async () => {
    const api = queueApi();
    renderReview("/operator/review?status=flagged&kind=education&user_id=user-1");

    await shownTitles();
    expect(lastQuery(api)).toEqual({ status: "flagged", kind: "education", user_id: "user-1", sort: "date", limit: "50" });
    expect((screen.getByLabelText("Status") as HTMLSelectElement).value).toBe("flagged");
    expect((screen.getByLabelText("User id") as HTMLInputElement).value).toBe("user-1");
  });

  it("says when nothing matches, and loads more pages by cursor", async () => {
    const api = stubApi().on("GET /operator/review", (call) =>
      call.query.get("cursor") === "page-2"
        ? { body: { items: [ITEMS[2]], next_cursor: null, counts: COUNTS } }
        : call.query.get("kind") === "offer"
          ? { body: { items: [], next_cursor: null, counts: COUNTS } }
          : { body: { items: ITEMS.slice(0, 2), next_cursor: "page-2", counts: COUNTS } },
    );
    const { user } = renderReview();

    expect(await shownTitles()).toHaveLength(2);
    await user.click(button("Load more"));
    await waitFor(async () => expect(await shownTitles()).toHaveLength(3));
    expect(api.called("GET /operator/review")[1]?.query.get("cursor")).toBe("page-2");
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();

    await user.selectOptions(screen.getByLabelText("Type"), "offer");
    expect(await screen.findByText("Nothing here")).toBeTruthy();
  });

  it("shows a queue the API refuses in words", async () => {
    stubApi().on("GET /operator/review", apiError(403, "forbidden", "Operators only."));
    renderReview();

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Operators only.");
    expect(alert.textContent).toContain("Error code: forbidden");
  });

  it("is not shown to a user without the operator role", async () => {
    const api = stubApi();
    signIn("user-1", ["user"]);
    renderPage(<Review />, { path: "/operator/review", role: "operator" });

    expect((await screen.findByRole("alert")).textContent).toContain("This page is for operators.");
    expect(api.calls).toHaveLength(0);
  });
});

describe("review queue: selection and decisions", () => {
  it("selects items one by one or all at once, and bulk-approves exactly the selection", async () => {
    const api = queueApi();
    const { user } = renderReview();
    await shownTitles();

    expect(button("Approve selected (0)").disabled).toBe(true);
    await user.click(select(ITEMS[0]!.title));
    await user.click(select(ITEMS[2]!.title));
    expect(screen.getByText("2 selected")).toBeTruthy();

    await user.click(screen.getByLabelText(/^Select all/));
    expect(screen.getByText("3 selected")).toBeTruthy();
    await user.click(screen.getByLabelText(/^Select all/));
    expect(screen.getByText("0 selected")).toBeTruthy();

    await user.click(select(ITEMS[0]!.title));
    await user.click(select(ITEMS[2]!.title));
    await user.click(button("Approve selected (2)"));

    expect(await screen.findByText("Approved 2 items.")).toBeTruthy();
    expect(api.lastBody("POST /operator/approve")).toEqual({ recommendation_ids: ["rec-a", "rec-c"] });
    await waitFor(async () => expect(await shownTitles()).toEqual([ITEMS[1]!.title])); // the queue is fetched again
    expect(screen.getByText("0 selected")).toBeTruthy();
  });

  it("clears the selection when a filter changes", async () => {
    const api = queueApi();
    const { user } = renderReview();
    await shownTitles();

    await user.click(select(ITEMS[0]!.title));
    expect(screen.getByText("1 selected")).toBeTruthy();
    await user.selectOptions(screen.getByLabelText("Type"), "education");
    await waitFor(() => expect(lastQuery(api).kind).toBe("education"));
    expect(screen.getByText("0 selected")).toBeTruthy();
  });

  it("rejects only with a reason: without one nothing is sent", async () => {
    const api = queueApi();
    const { user } = renderReview();
    await shownTitles();

    await user.click(select(ITEMS[1]!.title));
    await user.click(button("Reject selected…"));
    expect(screen.getByRole("heading", { name: "Reject 1 item" })).toBeTruthy();
    const reason = screen.getByLabelText("Reason (required; recorded in the audit log)") as HTMLTextAreaElement;
    await waitFor(() => expect(document.activeElement).toBe(reason));
    expect(reason.required).toBe(true);
    const confirm = button("Confirm rejection");
    expect(confirm.disabled).toBe(true);

    await user.type(reason, "   ");
    expect(confirm.disabled).toBe(true);
    fireEvent.submit(confirm.closest("form")!); // a forced submit with a blank reason sends nothing either
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(api.called("POST /operator/reject")).toHaveLength(0);

    await user.clear(reason);
    await user.type(reason, "  Cites a figure the user does not have. ");
    expect(confirm.disabled).toBe(false);
    await user.click(confirm);

    expect(await screen.findByText("Rejected 1 item.")).toBeTruthy();
    expect(api.called("POST /operator/reject")).toHaveLength(1);
    expect(api.lastBody("POST /operator/reject")).toEqual({
      recommendation_ids: ["rec-b"],
      reason: "Cites a figure the user does not have.",
    });
    expect(screen.queryByRole("heading", { name: /^Reject/ })).toBeNull();
  });

  it("cancelling a rejection sends nothing and keeps the selection", async () => {
    const api = queueApi();
    const { user } = renderReview();
    await shownTitles();

    await user.click(select(ITEMS[0]!.title));
    await user.click(button("Reject selected…"));
    await user.type(screen.getByLabelText(/^Reason \(required/), "Not for this user.");
    await user.click(button("Cancel"));

    expect(screen.queryByLabelText(/^Reason \(required/)).toBeNull();
    expect(api.called("POST /operator/reject")).toHaveLength(0);
    expect(select(ITEMS[0]!.title).checked).toBe(true);
  });

  it("shows a refused rejection in words and keeps the form", async () => {
    const api = queueApi().on("POST /operator/reject", apiError(409, "already_decided", "rec-a was already decided."));
    const { user } = renderReview();
    await shownTitles();

    await user.click(select(ITEMS[0]!.title));
    await user.click(button("Reject selected…"));
    await user.type(screen.getByLabelText(/^Reason \(required/), "Wrong persona.");
    await user.click(button("Confirm rejection"));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Nothing was rejected");
    expect(alert.textContent).toContain("rec-a was already decided.");
    expect(api.called("POST /operator/reject")).toHaveLength(1);
    expect(screen.getByLabelText(/^Reason \(required/)).toBeTruthy();
  });

  it("flags for a second review with an optional reason", async () => {
    const api = queueApi();
    const { user } = renderReview();
    await shownTitles();

    await user.click(select(ITEMS[0]!.title));
    await user.click(button("Flag selected…"));
    expect(screen.getByRole("heading", { name: "Flag 1 item for a second review" })).toBeTruthy();
    await user.click(button("Confirm flag"));

    expect(await screen.findByText("Flagged 1 item.")).toBeTruthy();
    expect(api.lastBody("POST /operator/flag")).toEqual({ recommendation_ids: ["rec-a"] });
  });

  it("shows a refused approval in words", async () => {
    queueApi().on("POST /operator/approve", apiError(503, "unavailable", "The operator service is restarting."));
    const { user } = renderReview();
    await shownTitles();

    await user.click(select(ITEMS[0]!.title));
    await user.click(button("Approve selected (1)"));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Nothing was approved");
    expect(alert.textContent).toContain("The operator service is restarting.");
  });
});

function report(passed: boolean, extra: Partial<OverrideReport> = {}): OverrideReport {
  return {
    passed,
    reasons: passed ? [] : ["tone", "grounding"],
    source: "edited",
    tone: passed
      ? { passed: true, hits: [] }
      : { passed: false, hits: [{ field: "body", rule: "shaming", match: "irresponsible" }] },
    grounding: passed
      ? { passed: true, checked_by: "operator", claims: [{ field: "rationale", text: "68 %", unit: "percent", value: 0.68, fact: "card.utilization" }], unmatched: [] }
      : {
          passed: false,
          checked_by: "operator",
          claims: [{ field: "body", text: "$9,999", unit: "usd", value: 9999, fact: null }],
          unmatched: ["$9,999"],
        },
    disclosure: { passed: true },
    length: { passed: true, limits: { title: [10, 120], body: [40, 1200] }, title: 32, body: 120 },
    ...extra,
  };
}

async function openEditor(user: ReturnType<typeof renderReview>["user"], title: string) {
  await shownTitles();
  await user.click(button(`Override… ${title}`));
  return screen.getByTestId("override-editor");
}

describe("review queue: the override editor checks before it saves", () => {
  it("saves only a text that passed the check as it stands, with a reason", async () => {
    const target = ITEMS[0]!;
    const api = queueApi()
      .on("POST /operator/override/check", (call) => {
        const text = (call.body as { text: { body: string } }).text;
        return { body: { recommendation_id: target.recommendation_id, passed: !text.body.includes("$9,999"), report: report(!text.body.includes("$9,999")) } };
      })
      .on("POST /operator/override", (call) => {
        const text = (call.body as { text: { title: string; body: string; rationale: string } }).text;
        return {
          body: {
            decision: "overridden",
            item: { ...target, status: "overridden", override: { ...text, disclosure: target.disclosure, catalog_item_id: target.catalog_item_id, catalog_version: "1", source: "edited" } },
            report: report(true),
          },
        };
      });
    const { user } = renderReview();
    const editor = await openEditor(user, target.title);
    const ui = within(editor);
    const save = ui.getByRole("button", { name: "Save override" }) as HTMLButtonElement;
    const body = ui.getByLabelText("Body") as HTMLTextAreaElement;

    // The figures it may cite, and the text as it is now.
    expect(within(ui.getByRole("list", { name: "Figures this item may cite" })).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "68 % (Card utilization)",
      "$3,400 (Card balance)",
    ]);
    expect((ui.getByLabelText("Title") as HTMLInputElement).value).toBe(target.title);
    expect(ui.getByText("Not checked yet.")).toBeTruthy();

    // A reason alone does not make it savable, nor does a forced submit save it.
    await user.type(ui.getByLabelText(/^Reason for the override/), "Kinder wording.");
    expect(save.disabled).toBe(true);
    fireEvent.submit(editor);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(api.called("POST /operator/override")).toHaveLength(0);

    // A first draft that fails: the report says what, in words, and Save stays off.
    await user.clear(body);
    await user.type(body, "Being irresponsible cost you $9,999 in interest.");
    await user.click(ui.getByRole("button", { name: "Check" }));
    const failed = await ui.findByTestId("guardrail-report");
    expect(failed.textContent).toContain("The text fails the guardrails: Tone, Grounding.");
    expect(failed.textContent).toContain("Body: “irresponsible” is shaming language");
    expect(failed.textContent).toContain("Body: “$9,999” matches none of this item's figures");
    expect(failed.textContent).toContain("Title: 32 characters (allowed 10 to 120)");
    expect(ui.getByText("Checked: fix what failed.")).toBeTruthy();
    expect(save.disabled).toBe(true);
    expect(api.lastBody("POST /operator/override/check")).toEqual({
      recommendation_id: "rec-a",
      text: { title: target.title, body: "Being irresponsible cost you $9,999 in interest.", rationale: target.rationale },
    });

    // A second draft that passes: now it can be saved.
    await user.clear(body);
    await user.type(body, "Paying more than the minimum brings your 68 % utilization down faster.");
    expect(ui.getByTestId("guardrail-report").textContent).toContain("(The text has changed since: check again.)");
    await user.click(ui.getByRole("button", { name: "Check" }));
    await waitFor(() => expect(ui.getByTestId("guardrail-report").textContent).toContain("Every guardrail check passed."));
    expect(ui.getByText("Checked: ready to save.")).toBeTruthy();
    expect(save.disabled).toBe(false);

    // Any edit after the check makes it stale again: Save goes off until the new text is checked.
    await user.type(body, "!");
    expect(save.disabled).toBe(true);
    expect(ui.getByText("Save is possible once the text as it stands has passed a check.")).toBeTruthy();
    await user.type(body, "{Backspace}"); // back to the text that passed
    expect(save.disabled).toBe(false);

    await user.click(save);
    expect(await screen.findByText("Override saved: the user now sees “Bring utilization under 30 %”.")).toBeTruthy();
    expect(api.called("POST /operator/override")).toHaveLength(1);
    expect(api.lastBody("POST /operator/override")).toEqual({
      recommendation_id: "rec-a",
      text: {
        title: target.title,
        body: "Paying more than the minimum brings your 68 % utilization down faster.",
        rationale: target.rationale,
      },
      reason: "Kinder wording.",
    });
    expect(screen.queryByTestId("override-editor")).toBeNull();
  });

  it("needs a reason even once the check passed", async () => {
    const api = queueApi().on("POST /operator/override/check", {
      body: { recommendation_id: "rec-a", passed: true, report: report(true) },
    });
    const { user } = renderReview();
    const ui = within(await openEditor(user, ITEMS[0]!.title));

    await user.click(ui.getByRole("button", { name: "Check" }));
    await ui.findByText("Checked: ready to save.");
    const save = ui.getByRole("button", { name: "Save override" }) as HTMLButtonElement;
    expect(save.disabled).toBe(true);
    fireEvent.submit(screen.getByTestId("override-editor"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(api.called("POST /operator/override")).toHaveLength(0);

    await user.type(ui.getByLabelText(/^Reason for the override/), "Better fit.");
    expect(save.disabled).toBe(false);
  });

  it("checks and saves another catalog item in the item's place", async () => {
    const target = ITEMS[0]!;
    const api = queueApi()
      .on("POST /operator/override/check", {
        body: { recommendation_id: "rec-a", passed: true, report: report(true, { source: "catalog_item", grounding: { passed: true, checked_by: "recommender", claims: [], unmatched: [] } }) },
      })
      .on("POST /operator/override", {
        body: {
          decision: "overridden",
          item: { ...target, override: { ...target.alternatives![0]!, source: "catalog_item" } },
          report: report(true),
        },
      });
    const { user } = renderReview();
    const ui = within(await openEditor(user, target.title));

    await user.click(ui.getByLabelText("Another catalog item (1)"));
    await user.click(ui.getByLabelText(/^Set up autopay/));
    await user.click(ui.getByRole("button", { name: "Check" }));
    expect((await ui.findByTestId("guardrail-report")).textContent).toContain(
      "checked by the recommender when it wrote this catalog item for the user",
    );
    expect(api.lastBody("POST /operator/override/check")).toEqual({ recommendation_id: "rec-a", catalog_item_id: "edu-autopay" });

    // Switching back to the edited text is a different draft: not checked.
    await user.click(ui.getByLabelText("Edited text"));
    expect(ui.getByText("Not checked yet.")).toBeTruthy();
    await user.click(ui.getByLabelText("Another catalog item (1)"));

    await user.type(ui.getByLabelText(/^Reason for the override/), "Autopay fits better.");
    await user.click(ui.getByRole("button", { name: "Save override" }));
    expect(await screen.findByText("Override saved: the user now sees “Set up autopay”.")).toBeTruthy();
    expect(api.lastBody("POST /operator/override")).toEqual({
      recommendation_id: "rec-a",
      catalog_item_id: "edu-autopay",
      reason: "Autopay fits better.",
    });
  });

  it("shows the report of a save the API refuses (422 guardrails_failed) and stays open", async () => {
    const api = queueApi()
      .on("POST /operator/override/check", { body: { recommendation_id: "rec-a", passed: true, report: report(true) } })
      .on("POST /operator/override", apiError(422, "guardrails_failed", "The text fails the guardrails.", report(false)));
    const { user } = renderReview();
    const editor = await openEditor(user, ITEMS[0]!.title);
    const ui = within(editor);

    await user.click(ui.getByRole("button", { name: "Check" }));
    await ui.findByText("Checked: ready to save.");
    await user.type(ui.getByLabelText(/^Reason for the override/), "Kinder wording.");
    await user.click(ui.getByRole("button", { name: "Save override" }));

    expect((await ui.findByRole("alert")).textContent).toContain(
      "Not saved: the text fails the guardrails (see the report above)",
    );
    expect(ui.getByTestId("guardrail-report").textContent).toContain("The text fails the guardrails: Tone, Grounding.");
    expect((ui.getByRole("button", { name: "Save override" }) as HTMLButtonElement).disabled).toBe(true);
    expect(api.called("POST /operator/override")).toHaveLength(1);
    expect(screen.getByTestId("override-editor")).toBe(editor);
  });

  it("cancel closes the editor without saving", async () => {
    const api = queueApi();
    const { user } = renderReview();
    const ui = within(await openEditor(user, ITEMS[0]!.title));

    await user.click(ui.getByRole("button", { name: "Cancel" }));
    expect(screen.queryByTestId("override-editor")).toBeNull();
    expect(api.called("POST /operator/override")).toHaveLength(0);
    expect(api.called("POST /operator/override/check")).toHaveLength(0);
  });
});
