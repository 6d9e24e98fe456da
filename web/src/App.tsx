import { Bullseye, Spinner } from "@patternfly/react-core";
import { lazy, ReactNode, Suspense } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";

import { Shell } from "./components/Shell";
import { SessionProvider, useSession } from "./session";

// One chunk per route: the first page loads only what it shows.
const loaders = {
  signin: () => import("./pages/SignIn"),
  repositories: () => import("./pages/RepositoriesList"),
  repository: () => import("./pages/RepositoryPage"),
  tag: () => import("./pages/TagDetails"),
};
const SignIn = lazy(loaders.signin);
const RepositoriesList = lazy(loaders.repositories);
const RepositoryPage = lazy(loaders.repository);
const TagDetails = lazy(loaders.tag);

/** Starts loading the first page's chunk while /config and the session are fetched. */
export function preloadRoute(path: string): void {
  const first = path.split("/")[1] ?? "";
  const rest = path.split("/").length > 2;
  const loader = first === "signin" ? loaders.signin : first === "tag" ? loaders.tag
    : first === "repository" && rest ? loaders.repository : loaders.repositories;
  void loader();
}
const Organizations = lazy(() => import("./pages/Organizations"));
const OrganizationSettings = lazy(() => import("./pages/OrganizationSettings"));
const NotFound = lazy(() => import("./pages/NotFound"));

const loading = (
  <Bullseye>
    <Spinner aria-label="Loading" />
  </Bullseye>
);

/** Anonymous visitors browse public repositories when the registry allows it; else sign in first. */
function Guard({ children }: { children: ReactNode }) {
  const { user, config } = useSession();
  const location = useLocation();
  if (!user && !config.features.ANONYMOUS_ACCESS) {
    return <Navigate to={`/signin?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  }
  return <>{children}</>;
}

export function App() {
  return (
    <SessionProvider fallback={loading}>
      <Shell>
        <Suspense fallback={loading}>
          <Routes>
            <Route path="/" element={<Navigate to="/repository" replace />} />
            <Route path="/signin" element={<SignIn />} />
            <Route path="/repository" element={<Guard><RepositoriesList /></Guard>} />
            <Route path="/repository/*" element={<Guard><RepositoryPage /></Guard>} />
            <Route path="/tag/*" element={<Guard><TagDetails /></Guard>} />
            <Route path="/organization" element={<Guard><Organizations /></Guard>} />
            <Route path="/organization/:name/settings" element={<Guard><OrganizationSettings /></Guard>} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </Shell>
    </SessionProvider>
  );
}
