import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { ProfileView } from "../api/types";
import { useSession } from "../auth/session";
import { ErrorMessage, Loading, PageTitle } from "../components/status";
import { formatDateTime, humanize } from "../format";

export function Overview() {
  const session = useSession();
  const profile = useQuery({
    queryKey: ["profile", session.userId],
    queryFn: async () => {
      try {
        return await api<ProfileView>(`/profile/${encodeURIComponent(session.userId)}`);
      } catch (error) {
        // The profile is created from the sign-up event a moment after registering, or on first consent.
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }
    },
  });

  const consented = Boolean(profile.data?.consent && profile.data.consent.status === "granted");
  const latest = profile.data?.latest_upload ?? null;

  return (
    <section>
      <PageTitle title="Overview">Your overview</PageTitle>
      {profile.isPending && <Loading label="Loading your profile…" />}
      {profile.isError && <ErrorMessage error={profile.error} onRetry={() => void profile.refetch()} />}
      {profile.isSuccess && (
        <ol className="steps">
          <li className={consented ? "done" : "todo"}>
            <h2>1. Consent</h2>
            {consented ? (
              <p>
                You have given consent (policy {profile.data?.consent?.policy_version}). You can revoke it or
                erase your data at any time.
              </p>
            ) : (
              <p>SpendSense processes nothing until you consent.</p>
            )}
            <Link to="/me/consent">{consented ? "Review consent" : "Give consent"}</Link>
          </li>
          <li className={latest ? "done" : "todo"}>
            <h2>2. Upload your data</h2>
            {latest ? (
              <p>
                Latest upload: {humanize(latest.status)} ({formatDateTime(latest.created_at)}).{" "}
                {profile.data && profile.data.uploads > 1 && `${profile.data.uploads} uploads in all.`}
              </p>
            ) : (
              <p>Upload accounts, transactions and liabilities (JSON, JSON Lines, CSV or a zip).</p>
            )}
            <Link to={latest ? `/me/upload?upload=${encodeURIComponent(latest.upload_id)}` : "/me/upload"}>
              {latest ? "Track or upload again" : "Upload data"}
            </Link>
          </li>
          <li className={latest && ["analyzed", "recommended"].includes(latest.status) ? "done" : "todo"}>
            <h2>3. Your persona</h2>
            <p>The signals found in your data over 30 and 180 days, and the persona they point to.</p>
            <Link to="/me/persona">See my persona</Link>
          </li>
          <li className={latest?.status === "recommended" ? "done" : "todo"}>
            <h2>4. Recommendations</h2>
            <p>Education and offers chosen for you, each with why you see it. A reviewer approves each one.</p>
            <Link to="/me/recommendations">See my recommendations</Link>
          </li>
        </ol>
      )}
      <details className="card">
        <summary>Your account</summary>
        <dl className="facts small">
          <div>
            <dt>Email</dt>
            <dd>{session.email ?? "—"}</dd>
          </div>
          <div>
            <dt>User id</dt>
            <dd>
              <code data-testid="user-id">{session.userId}</code>
            </dd>
          </div>
          <div>
            <dt>Roles</dt>
            <dd>{session.roles.join(", ") || "user"}</dd>
          </div>
        </dl>
      </details>
    </section>
  );
}
