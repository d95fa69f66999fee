import { lazy, Suspense } from "react";
import { createBrowserRouter, Link, RouterProvider } from "react-router-dom";
import { Home, Layout, RequireRole } from "./components/Layout";
import { Loading, PageTitle } from "./components/status";
import { Consent } from "./pages/Consent";
import { Overview } from "./pages/Overview";
import { Persona } from "./pages/Persona";
import { Recommendations } from "./pages/Recommendations";
import { SignIn } from "./pages/SignIn";
import { SignUp } from "./pages/SignUp";
import { Upload } from "./pages/Upload";

// The operator's console is its own chunk: users never download it.
const Review = lazy(() => import("./pages/operator/Review").then((m) => ({ default: m.Review })));
const Audit = lazy(() => import("./pages/operator/Audit").then((m) => ({ default: m.Audit })));

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

function Operator({ page }: { page: "review" | "audit" }) {
  return (
    <Suspense fallback={<Loading label="Loading the console…" />}>{page === "review" ? <Review /> : <Audit />}</Suspense>
  );
}

const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { index: true, element: <Home /> },
      { path: "signin", element: <SignIn /> },
      { path: "signup", element: <SignUp /> },
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
          { index: true, element: <Operator page="review" /> },
          { path: "review", element: <Operator page="review" /> },
          { path: "audit", element: <Operator page="audit" /> },
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
