import { fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { ConsentRecord, ConsentStatus } from "../api/types";
import { getAuthState } from "../auth/session";
import { apiError, renderPage, signIn, stubApi, type FakeApi } from "../test/harness";
import { Consent, POLICY_VERSION } from "./Consent";

const USER = "user-1";

function record(scopes: string[], revoked = false): ConsentRecord {
  return {
    consent_id: "consent-1",
    user_id: USER,
    policy_version: POLICY_VERSION,
    scopes,
    granted_at: "2026-01-10T09:00:00Z",
    revoked_at: revoked ? "2026-01-11T09:00:00Z" : null,
    status: revoked ? "revoked" : "granted",
  };
}

/** GET /consent/{user}: no profile yet (404) until a consent is given, then the given one. */
function consentApi(): { api: FakeApi; given: () => ConsentRecord | null } {
  let current: ConsentRecord | null = null;
  const api = stubApi()
    .on(`GET /consent/${USER}`, () =>
      current
        ? { body: { user_id: USER, current, history: [current] } satisfies ConsentStatus }
        : apiError(404, "not_found", "No profile for this user."),
    )
    .on("POST /consent", (call) => {
      current = record((call.body as { scopes: string[] }).scopes);
      return { status: 201, body: current };
    });
  return { api, given: () => current };
}

function renderConsent() {
  signIn(USER);
  return renderPage(<Consent />, { path: "/me/consent", role: "user" });
}

describe("consent", () => {
  it("shows the policy, and gives consent only once it has been read", async () => {
    const { api } = consentApi();
    const { user } = renderConsent();

    expect((await screen.findByTestId("consent-status")).textContent).toContain("No current consent.");
    expect(screen.getByRole("heading", { name: `Data and consent policy (version ${POLICY_VERSION})` })).toBeTruthy();
    const give = screen.getByRole("button", { name: "Give consent" }) as HTMLButtonElement;
    expect(give.disabled).toBe(true);

    fireEvent.submit(give.closest("form")!); // even a forced submit sends nothing before the box is ticked
    expect(api.called("POST /consent")).toHaveLength(0);

    await user.click(screen.getByLabelText(/I have read the policy/));
    expect(give.disabled).toBe(false);
    await user.click(give);

    await waitFor(() => expect(screen.getByTestId("consent-status").textContent).toContain("Consent given"));
    expect(api.lastBody("POST /consent")).toEqual({
      user_id: USER,
      policy_version: POLICY_VERSION,
      scopes: ["analysis", "recommendations", "operator_review"],
    });
    expect(screen.getByText("Consent given. You can now upload your data.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Give consent" })).toBeNull();
  });

  it("sends only the scopes left ticked; analysis is required", async () => {
    const { api } = consentApi();
    const { user } = renderConsent();

    const analysis = (await screen.findByLabelText(/^Analysis/)) as HTMLInputElement;
    expect(analysis.checked && analysis.disabled).toBe(true);
    await user.click(screen.getByLabelText(/^Operator review/));
    await user.click(screen.getByLabelText(/I have read the policy/));
    await user.click(screen.getByRole("button", { name: "Give consent" }));

    await waitFor(() => expect(api.called("POST /consent")).toHaveLength(1));
    expect((api.lastBody("POST /consent") as { scopes: string[] }).scopes).toEqual(["analysis", "recommendations"]);
    expect((await screen.findByTestId("consent-status")).textContent).toContain("Analysis, Recommendations.");
  });

  it("revokes a current consent", async () => {
    let current: ConsentRecord | null = record(["analysis", "recommendations"]);
    const api = stubApi()
      .on(`GET /consent/${USER}`, () => ({ body: { user_id: USER, current, history: [record(["analysis"], true)] } }))
      .on(`DELETE /consent/${USER}`, () => {
        current = null;
        return { body: record(["analysis", "recommendations"], true) };
      });
    const { user } = renderConsent();

    expect((await screen.findByTestId("consent-status")).textContent).toContain("Consent given");
    await user.click(screen.getByRole("button", { name: "Revoke consent" }));

    await waitFor(() => expect(screen.getByTestId("consent-status").textContent).toContain("No current consent."));
    expect(api.called(`DELETE /consent/${USER}`)[0]?.query.get("erase")).toBeNull();
    expect(screen.getByText("Consent revoked. SpendSense has stopped processing your data.")).toBeTruthy();
  });

  it("shows a refused consent in words and keeps the form", async () => {
    stubApi()
      .on(`GET /consent/${USER}`, apiError(404, "not_found", "No profile."))
      .on("POST /consent", apiError(422, "validation_error", "Unknown policy version.", [
        { field: "policy_version", reason: "is not a published policy" },
      ]));
    const { user } = renderConsent();

    await user.click(await screen.findByLabelText(/I have read the policy/));
    await user.click(screen.getByRole("button", { name: "Give consent" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Could not record your consent");
    expect(alert.textContent).toContain("policy_version: is not a published policy");
    expect(screen.getByRole("button", { name: "Give consent" })).toBeTruthy();
  });

  it("erases the data only after ERASE is typed, then signs out", async () => {
    const { api } = consentApi();
    api.on(`DELETE /consent/${USER}`, {
      status: 202,
      body: {
        user_id: USER,
        status: "accepted",
        requested_at: "2026-01-12T09:00:00Z",
        consent_revoked: true,
        next: "Every service deletes it within minutes.",
      },
    });
    const { user, router } = renderConsent();

    await user.click(await screen.findByRole("button", { name: "Erase my data…" }));
    const confirm = screen.getByRole("button", { name: "Erase everything" }) as HTMLButtonElement;
    await waitFor(() => expect(document.activeElement?.textContent).toBe("Are you sure?"));
    expect(confirm.disabled).toBe(true);

    await user.type(screen.getByLabelText("Type ERASE to confirm"), "ERAS");
    expect(confirm.disabled).toBe(true);
    fireEvent.submit(confirm.closest("form")!);
    expect(api.called(`DELETE /consent/${USER}`)).toHaveLength(0);

    await user.type(screen.getByLabelText("Type ERASE to confirm"), "e");
    expect(confirm.disabled).toBe(false);
    await user.click(confirm);

    await waitFor(() => expect(router.state.location.pathname).toBe("/signin"));
    expect(api.called(`DELETE /consent/${USER}`)[0]?.query.get("erase")).toBe("true");
    const state = getAuthState();
    expect(state.status).toBe("signed_out");
    expect(state.status === "signed_out" && state.notice).toBe(
      "Your data is being erased. Every service deletes it within minutes.",
    );
  });

  it("cancelling the erasure sends nothing", async () => {
    const { api } = consentApi();
    const { user } = renderConsent();

    await user.click(await screen.findByRole("button", { name: "Erase my data…" }));
    await user.type(screen.getByLabelText("Type ERASE to confirm"), "ERASE");
    await user.click(screen.getByRole("button", { name: "Cancel" }));

    expect(screen.queryByLabelText("Type ERASE to confirm")).toBeNull();
    expect(api.called(`DELETE /consent/${USER}`)).toHaveLength(0);
  });
});
