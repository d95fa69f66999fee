import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { getAuthState } from "../auth/session";
import { apiError, renderPage, stubApi, tokens } from "../test/harness";
import { SignUp } from "./SignUp";

const PASSWORD = "Correct-Horse-9-Battery";

describe("sign-up", () => {
  it("ticks each password rule as it is met while typing", async () => {
    stubApi();
    const { user } = renderPage(<SignUp />, { path: "/signup" });
    const rules = screen.getByRole("list", { name: "Password rules" });
    const met = () => within(rules).queryAllByText(/\(met\)/).length;

    expect(met()).toBe(0);
    await user.type(screen.getByLabelText("Password", { selector: "input" }), "abc");
    expect(met()).toBe(1); // a lowercase letter
    await user.type(screen.getByLabelText("Password", { selector: "input" }), "DEF1!ghijkl");
    expect(met()).toBe(5);
    expect(within(rules).getByText("at least 12 characters").closest("li")?.className).toBe("ok");
  });

  it("creates the account, signs in and goes to consent", async () => {
    const api = stubApi().on("POST /auth/register", { status: 201, body: tokens("user-new") });
    const { user, router } = renderPage(<SignUp />, { path: "/signup" });

    await user.type(screen.getByLabelText("Email"), " new@example.com ");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), PASSWORD);
    await user.click(screen.getByRole("button", { name: "Create account" }));

    await waitFor(() => expect(router.state.location.pathname).toBe("/me/consent"));
    expect(router.state.location.state).toEqual({ welcome: true });
    expect(api.lastBody("POST /auth/register")).toEqual({ email: "new@example.com", password: PASSWORD });
    const state = getAuthState();
    expect(state.status === "signed_in" && state.session.userId).toBe("user-new");
  });

  it("lists every rule the API says the password breaks, in words", async () => {
    stubApi().on(
      "POST /auth/register",
      apiError(422, "validation_error", "The password is too weak.", [
        { field: "password", reason: "must contain a digit" },
        { field: "password", reason: "is a common password" },
      ]),
    );
    const { user, router } = renderPage(<SignUp />, { path: "/signup" });

    await user.type(screen.getByLabelText("Email"), "new@example.com");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), "Password-password");
    await user.click(screen.getByRole("button", { name: "Create account" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Could not create the account");
    expect(alert.textContent).toContain("The password is too weak.");
    expect(within(alert).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "password: must contain a digit",
      "password: is a common password",
    ]);
    expect(router.state.location.pathname).toBe("/signup");
    expect(getAuthState().status).toBe("signed_out");
  });

  it("says an email already taken in words", async () => {
    stubApi().on("POST /auth/register", apiError(409, "email_taken", "An account with this email already exists."));
    const { user } = renderPage(<SignUp />, { path: "/signup" });

    await user.type(screen.getByLabelText("Email"), "ana@example.com");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), PASSWORD);
    await user.click(screen.getByRole("button", { name: "Create account" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("An account with this email already exists.");
    expect(alert.textContent).toContain("Error code: email_taken");
  });

  it("does not send an invalid email", async () => {
    const api = stubApi();
    const { user } = renderPage(<SignUp />, { path: "/signup" });

    await user.type(screen.getByLabelText("Email"), "not-an-email");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), PASSWORD);
    await user.click(screen.getByRole("button", { name: "Create account" }));

    expect(api.called("POST /auth/register")).toHaveLength(0);
  });
});
