import { Bullseye, Spinner } from "@patternfly/react-core";
import { lazy, ReactNode, Suspense } from "react";
import { Navigate, Route, Routes, useLocation, useParams, useSearchParams } from "react-router-dom";

import { Shell } from "./components/Shell";
import { organizationSettingsRoute } from "./lib/orgSettings";
import { preloadable } from "./lib/preloadable";
import { SessionProvider, useSession } from "./session";

// One chunk per route: the first page loads only what it shows.
const SignIn = preloadable(() => import("./pages/SignIn"));
const RepositoriesList = preloadable(() => import("./pages/RepositoriesList"));
const RepositoryPage = preloadable(() => import("./pages/RepositoryPage"));
const TagDetails = preloadable(() => import("./pages/TagDetails"));

/** Starts loading the first page's chunk while /config and the session are fetched. */
export function preloadRoute(path: string): void {
  const first = path.split("/")[1] ?? "";
  const rest = path.split("/").length > 2;
  const route = first === "signin" ? SignIn : first === "tag" ? TagDetails
    : first === "repository" && rest ? RepositoryPage : RepositoriesList;
  void route.preload();
}
const Organizations = lazy(() => import("./pages/OrganizationsList"));
const OrganizationPage = lazy(() => import("./pages/OrganizationPage"));
const TeamPage = lazy(() => import("./pages/TeamPage"));
const SearchPage = lazy(() => import("./pages/SearchPage"));
const UserLogs = lazy(() => import("./pages/UserLogs"));
const SuperuserPage = lazy(() => import("./pages/SuperuserPage"));
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

/** The first settings page's address (`/organization/<org>/settings?tab=notifications|quota`) now
 * leads to the organisation page's Settings tab, on the same section. */
function OrganizationSettingsRedirect() {
  const name = useParams().name ?? "";
  const [params] = useSearchParams();
  return <Navigate to={organizationSettingsRoute(name, params.get("tab"))} replace />;
}

/** Pages about the signed-in user's own organisations and account: sign in first. */
function SignedIn({ children }: { children: ReactNode }) {
  const { user } = useSession();
  const location = useLocation();
  if (!user) return <Navigate to={`/signin?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
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
            <Route path="/organization" element={<SignedIn><Organizations /></SignedIn>} />
            <Route path="/organization/:org" element={<Guard><OrganizationPage /></Guard>} />
            <Route path="/organization/:org/teams/:team" element={<SignedIn><TeamPage /></SignedIn>} />
            <Route path="/search" element={<Guard><SearchPage /></Guard>} />
            <Route path="/usage-logs" element={<SignedIn><UserLogs /></SignedIn>} />
            <Route path="/superuser" element={<SignedIn><SuperuserPage /></SignedIn>} />
            <Route path="/organization/:name/settings" element={<OrganizationSettingsRedirect />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </Shell>
    </SessionProvider>
  );
}
