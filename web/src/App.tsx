import { lazy, Suspense } from "react";
import { createBrowserRouter, Link, RouterProvider } from "react-router-dom";
import { Home, Layout, RequireRole } from "./components/Layout";
import { Loading, PageTitle } from "./components/status";
import { Consent } from "./pages/Consent";
import { OAuthReturn } from "./pages/OAuthReturn";
import { Overview } from "./pages/Overview";
import { Persona } from "./pages/Persona";
import { Recommendations } from "./pages/Recommendations";
import { SignIn } from "./pages/SignIn";
import { SignUp } from "./pages/SignUp";
import { Upload } from "./pages/Upload";

// The operator's console and the admin pages are chunks of their own: users never download them.
const Review = lazy(() => import("./pages/operator/Review").then((m) => ({ default: m.Review })));
const Audit = lazy(() => import("./pages/operator/Audit").then((m) => ({ default: m.Audit })));
const UserDetail = lazy(() => import("./pages/operator/UserDetail").then((m) => ({ default: m.UserDetail })));
const RuleSets = lazy(() => import("./pages/admin/RuleSets").then((m) => ({ default: m.RuleSets })));
const DeadLetters = lazy(() => import("./pages/admin/DeadLetters").then((m) => ({ default: m.DeadLetters })));

const CONSOLE_PAGES = {
  review: Review,
  audit: Audit,
  user: UserDetail,
  rules: RuleSets,
  "dead-letters": DeadLetters,
} as const;

function NotFound() {
  return (
    <section>
      <PageTitle title="Page not found">Page not found</PageTitle>
      <p>
        There is no page at this address. <Link to="/">Go to the start</Link>.
      </p>
    </section>
  );
}

function Console({ page }: { page: keyof typeof CONSOLE_PAGES }) {
  const Page = CONSOLE_PAGES[page];
  return (
    <Suspense fallback={<Loading label="Loading the console…" />}>
      <Page />
    </Suspense>
  );
}

const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { index: true, element: <Home /> },
      { path: "signin", element: <SignIn /> },
      { path: "signup", element: <SignUp /> },
      { path: "signin/oauth/:provider", element: <OAuthReturn /> },
      {
        path: "me",
        element: <RequireRole role="user" />,
        children: [
          { index: true, element: <Overview /> },
          { path: "consent", element: <Consent /> },
          { path: "upload", element: <Upload /> },
          { path: "persona", element: <Persona /> },
          { path: "recommendations", element: <Recommendations /> },
        ],
      },
      {
        path: "operator",
        element: <RequireRole role="operator" />,
        children: [
          { index: true, element: <Console page="review" /> },
          { path: "review", element: <Console page="review" /> },
          { path: "audit", element: <Console page="audit" /> },
          { path: "users/:userId", element: <Console page="user" /> },
        ],
      },
      {
        path: "admin",
        element: <RequireRole role="admin" />,
        children: [
          { index: true, element: <Console page="rules" /> },
          { path: "rules", element: <Console page="rules" /> },
          { path: "dead-letters", element: <Console page="dead-letters" /> },
        ],
      },
      { path: "*", element: <NotFound /> },
    ],
  },
], {
  future: {
    v7_relativeSplatPath: true,
    v7_fetcherPersist: true,
    v7_normalizeFormMethod: true,
    v7_partialHydration: true,
    v7_skipActionErrorRevalidation: true,
  },
});

export function App() {
  return <RouterProvider router={router} future={{ v7_startTransition: true }} />;
}
