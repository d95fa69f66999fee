import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { getAuthState } from "../auth/session";
import { apiError, renderPage, stubApi, tokens } from "../test/harness";
import { SignIn } from "./SignIn";

function renderSignIn() {
  return renderPage(<SignIn />, { path: "/signin" });
}

describe("sign-in with a password", () => {
  it("sends an email as email, signs in and goes to the user's start page", async () => {
    const api = stubApi().oauthProviders().on("POST /auth/login", { body: tokens("user-7", ["user"]) });
    const { user, router } = renderSignIn();

    await user.type(screen.getByLabelText("Email or username"), "  ana@example.com ");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), "Correct-Horse-9");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    await waitFor(() => expect(router.state.location.pathname).toBe("/me"));
    expect(api.lastBody("POST /auth/login")).toEqual({ email: "ana@example.com", password: "Correct-Horse-9" });
    expect(api.called("POST /auth/login")[0]?.headers.Authorization).toBeUndefined();
    const state = getAuthState();
    expect(state.status === "signed_in" && state.session.userId).toBe("user-7");
  });

  it("sends a name without @ as username, and an operator lands on the review queue", async () => {
    const api = stubApi().oauthProviders().on("POST /auth/login", { body: tokens("op-1", ["operator"]) });
    const { user, router } = renderSignIn();

    await user.type(screen.getByLabelText("Email or username"), "olga");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), "secret-secret");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    await waitFor(() => expect(router.state.location.pathname).toBe("/operator/review"));
    expect(api.lastBody("POST /auth/login")).toEqual({ username: "olga", password: "secret-secret" });
  });

  it("shows a refusal in words with its code, and stays signed out", async () => {
    stubApi()
      .oauthProviders()
      .on("POST /auth/login", apiError(401, "invalid_credentials", "The email or password is wrong."));
    const { user, router } = renderSignIn();

    await user.type(screen.getByLabelText("Email or username"), "ana@example.com");
    await user.type(screen.getByLabelText("Password", { selector: "input" }), "wrong");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Could not sign in");
    expect(alert.textContent).toContain("The email or password is wrong.");
    expect(alert.textContent).toContain("Error code: invalid_credentials");
    expect(router.state.location.pathname).toBe("/signin");
    expect(getAuthState().status).toBe("signed_out");
  });

  it("does not send the form while a field is empty", async () => {
    const api = stubApi().oauthProviders();
    const { user } = renderSignIn();

    await user.type(screen.getByLabelText("Email or username"), "ana@example.com");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    expect(api.called("POST /auth/login")).toHaveLength(0);
  });

  it("shows the password on request", async () => {
    stubApi().oauthProviders();
    const { user } = renderSignIn();
    const password = screen.getByLabelText("Password", { selector: "input" });

    expect(password.getAttribute("type")).toBe("password");
    await user.click(screen.getAllByLabelText("Show password")[0]!);
    expect(password.getAttribute("type")).toBe("text");
  });
});

describe("sign-in with a phone code", () => {
  const sent = { phone: "+14155552671", expires_in: 300 };

  it("requests a code, verifies the 6 digits typed and signs in", async () => {
    const api = stubApi()
      .oauthProviders()
      .on("POST /auth/phone/request", { body: sent })
      .on("POST /auth/phone/verify", { body: tokens("user-9", ["user"], null) });
    const { user, router } = renderSignIn();

    await user.type(screen.getByLabelText("Phone number"), " +1 415 555 2671 ");
    await user.click(screen.getByRole("button", { name: "Send code" }));

    const code = await screen.findByLabelText("Code from the SMS");
    expect(api.lastBody("POST /auth/phone/request")).toEqual({ phone: "+1 415 555 2671" });
    expect(screen.getByText(/A 6-digit code was sent to/).textContent).toContain("+14155552671");
    expect(screen.getByText(/It works for 5 minutes/)).toBeTruthy();
    await waitFor(() => expect(document.activeElement).toBe(code));

    const verify = screen.getByRole("button", { name: "Verify code" }) as HTMLButtonElement;
    await user.type(code, "12a3");
    expect((code as HTMLInputElement).value).toBe("123"); // digits only
    expect(verify.disabled).toBe(true);
    await user.type(code, "456");
    expect(verify.disabled).toBe(false);
    await user.click(verify);

    await waitFor(() => expect(router.state.location.pathname).toBe("/me"));
    expect(api.lastBody("POST /auth/phone/verify")).toEqual({ phone: "+14155552671", code: "123456" });
  });

  it("says a wrong code in words, sends a new code to the same number, and can start over", async () => {
    const api = stubApi()
      .oauthProviders()
      .on("POST /auth/phone/request", { body: sent })
      .on("POST /auth/phone/resend", { body: sent })
      .on("POST /auth/phone/verify", apiError(400, "invalid_code", "The code is wrong or has expired."));
    const { user, router } = renderSignIn();

    await user.type(screen.getByLabelText("Phone number"), "+14155552671");
    await user.click(screen.getByRole("button", { name: "Send code" }));
    await user.type(await screen.findByLabelText("Code from the SMS"), "000000");
    await user.click(screen.getByRole("button", { name: "Verify code" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("The code was not accepted");
    expect(alert.textContent).toContain("The code is wrong or has expired.");
    expect(alert.textContent).toContain("invalid_code");
    expect(router.state.location.pathname).toBe("/signin");

    await user.click(screen.getByRole("button", { name: "Send a new code" }));
    await waitFor(() => expect(api.called("POST /auth/phone/resend")).toHaveLength(1));
    expect(api.lastBody("POST /auth/phone/resend")).toEqual({ phone: "+14155552671" });
    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull()); // the old refusal is gone
    expect((screen.getByLabelText("Code from the SMS") as HTMLInputElement).value).toBe("");

    await user.click(screen.getByRole("button", { name: "Use another number" }));
    expect(screen.getByLabelText("Phone number")).toBeTruthy();
    expect(screen.queryByLabelText("Code from the SMS")).toBeNull();
  });

  it("says why no code was sent (rate limit with its wait)", async () => {
    stubApi()
      .oauthProviders()
      .on("POST /auth/phone/request", {
        ...apiError(429, "rate_limited", "Too many codes requested."),
        headers: { "Retry-After": "30" },
      });
    const { user } = renderSignIn();

    await user.type(screen.getByLabelText("Phone number"), "+14155552671");
    await user.click(screen.getByRole("button", { name: "Send code" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("No code was sent");
    expect(alert.textContent).toContain("Too many codes requested. (try again in 30 s)");
    expect(screen.queryByLabelText("Code from the SMS")).toBeNull();
  });
});

describe("sign-in with an OAuth provider", () => {
  it("shows a button for each configured provider only", async () => {
    const api = stubApi().oauthProviders("google", "github");
    renderSignIn();

    const section = await screen.findByRole("region", { name: "Use another account" });
    const buttons = within(section).getAllByRole("button").map((b) => b.textContent);
    expect(buttons).toEqual(["Continue with Google", "Continue with GitHub"]);
    expect(api.called("POST /auth/oauth/apple/token")).toHaveLength(1);
  });

  it("shows no provider section when none is configured", async () => {
    const api = stubApi().oauthProviders();
    renderSignIn();

    await waitFor(() => expect(api.called("POST /auth/oauth/facebook/token")).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.queryByRole("region", { name: "Use another account" })).toBeNull();
  });
});
