import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Stage, UploadView } from "../api/types";
import { renderPage, signIn, stubApi } from "../test/harness";
import { Upload } from "./Upload";

const USER = "user-1";

function view(stage: Stage, extra: Partial<UploadView> = {}): UploadView {
  return {
    upload_id: "up-1",
    status: stage,
    error: null,
    users: [{ user_id: USER, stage, reason: null }],
    counts: { accounts: 3, transactions: 412 },
    notes: [],
    as_of: "2026-01-09",
    size_bytes: 2048,
    created_at: "2026-01-10T09:00:00Z",
    updated_at: "2026-01-10T09:00:05Z",
    ...extra,
  };
}

function renderUpload(path = "/me/upload") {
  signIn(USER);
  return renderPage(<Upload />, { path, route: "/me/upload", role: "user" });
}

function stepStates(): Record<string, string | null> {
  const steps = document.querySelectorAll<HTMLElement>(".tracker-step");
  return Object.fromEntries([...steps].map((s) => [s.dataset.stage, s.dataset.state ?? null]));
}

describe("upload", () => {
  it("sends the chosen file, shows its progress, then tracks the stages live until recommended", async () => {
    let polls = 0;
    const api = stubApi().on("GET /uploads/up-1", () => {
      polls += 1;
      return { body: view(polls === 1 ? "ingested" : "recommended") };
    });
    const { user, router } = renderUpload();
    const upload = screen.getByRole("button", { name: "Upload" }) as HTMLButtonElement;
    expect(upload.disabled).toBe(true);

    const file = new File(['{"accounts": []}'], "mine.json", { type: "application/json" });
    await user.upload(screen.getByLabelText("Choose a file to upload"), file);
    expect(screen.getByText("Selected: mine.json (16 B)")).toBeTruthy();
    await user.click(upload);

    await waitFor(() => expect(api.uploads).toHaveLength(1));
    const sent = api.uploads[0]!;
    expect(sent.method).toBe("POST");
    expect(sent.url).toBe("/api/v1/uploads");
    expect(sent.headers.Authorization).toMatch(/^Bearer /);
    expect(sent.file?.name).toBe("mine.json");
    expect(screen.getByRole("button", { name: "Uploading…" })).toBeTruthy();

    act(() => sent.progress(8, 16));
    expect(screen.getByLabelText("Uploading… 50 %")).toBeTruthy();

    act(() =>
      sent.respond({
        status: 202,
        body: { upload_id: "up-1", status: "received", size_bytes: 16, user_ids: [USER], counts: {}, notes: [] },
      }),
    );
    expect(await screen.findByText(/Upload received \(16 B\)/)).toBeTruthy();
    await waitFor(() => expect(router.state.location.search).toBe("?upload=up-1")); // a transition: may lag

    await waitFor(() => expect(stepStates()).toMatchObject({ ingested: "done", analyzed: "active" }));
    expect(screen.getByText("Working on it — this page updates by itself.")).toBeTruthy();
    // Polled again a second later, and then no more: recommended is the last stage.
    await waitFor(() => expect(stepStates().recommended).toBe("done"), { timeout: 3000 });
    expect(screen.getByRole("link", { name: "your recommendations" })).toBeTruthy();
    const polled = api.called("GET /uploads/up-1").length;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(api.called("GET /uploads/up-1")).toHaveLength(polled);
  });

  it("takes a file dropped on the drop zone", async () => {
    stubApi();
    renderUpload();
    const file = new File(["a,b\n1,2\n"], "transactions.csv", { type: "text/csv" });

    fireEvent.dragOver(screen.getByTestId("dropzone"), { dataTransfer: { files: [file] } });
    expect(screen.getByTestId("dropzone").className).toContain("dragging");
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [file] } });

    expect(screen.getByTestId("dropzone").className).not.toContain("dragging");
    expect(screen.getByText("Selected: transactions.csv (8 B)")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Upload" }) as HTMLButtonElement).disabled).toBe(false);
  });

  it("lists every problem of a refused file with its path", async () => {
    const api = stubApi();
    const { user } = renderUpload();

    await user.upload(screen.getByLabelText("Choose a file to upload"), new File(["{}"], "bad.json"));
    await user.click(screen.getByRole("button", { name: "Upload" }));
    await waitFor(() => expect(api.uploads).toHaveLength(1));
    act(() =>
      api.uploads[0]!.respond({
        status: 422,
        body: {
          error: {
            code: "invalid_upload",
            message: "The file has 2 problems.",
            details: [
              { path: "accounts[0].type", message: "must be one of depository, credit, loan" },
              { path: "transactions[3].amount", message: "is not a number" },
            ],
          },
        },
      }),
    );

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("The upload was not accepted");
    expect(within(alert).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "accounts[0].type: must be one of depository, credit, loan",
      "transactions[3].amount: is not a number",
    ]);
    expect(alert.textContent).toContain("Error code: invalid_upload");
    expect((screen.getByRole("button", { name: "Upload" }) as HTMLButtonElement).disabled).toBe(false);
  });

  it("cancels an upload in flight", async () => {
    const api = stubApi();
    const { user } = renderUpload();

    await user.upload(screen.getByLabelText("Choose a file to upload"), new File(["{}"], "big.json"));
    await user.click(screen.getByRole("button", { name: "Upload" }));
    await waitFor(() => expect(api.uploads).toHaveLength(1));
    await user.click(screen.getByRole("button", { name: "Cancel" }));

    expect((await screen.findByRole("alert")).textContent).toContain("Upload cancelled.");
    expect(screen.queryByRole("button", { name: "Cancel" })).toBeNull();
  });

  it("shows a file refused once parsed, from the address's upload id", async () => {
    stubApi().on("GET /uploads/up-1", {
      body: view("failed", {
        users: [],
        error: {
          code: "invalid_upload",
          message: "The file could not be read.",
          details: [{ path: "transactions[0].date", message: "is not a date" }],
        },
      }),
    });
    renderUpload("/me/upload?upload=up-1");

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("The upload was not accepted");
    expect(alert.textContent).toContain("transactions[0].date: is not a date");
    expect(screen.queryByText("Working on it — this page updates by itself.")).toBeNull();
  });
});
