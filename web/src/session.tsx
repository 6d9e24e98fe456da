// Who is signed in, the registry's /config, and the toasts every page uses.
import { Alert, AlertActionCloseButton, AlertGroup } from "@patternfly/react-core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, ReactNode, useCallback, useContext, useEffect, useLayoutEffect, useMemo, useState } from "react";
import { useLocation, useNavigate } from "react-router-dom";

import { api, setCsrfToken, whenRefused } from "./lib/api";
import { Toast, toastTop, withToast } from "./lib/toasts";
import type { SessionInfo, SessionUser, UiConfig } from "./types";

export const SESSION_ENDED = "Your session has ended. Sign in again to continue.";

interface SessionValue {
  config: UiConfig;
  user: SessionUser | null;
  readOnly: boolean;
  signIn: (username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  notice: string | null;
  toast: (variant: Toast["variant"], title: string) => void;
}

const SessionContext = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside SessionProvider");
  return value;
}

// The queries every page waits for; main.tsx starts them before the first render.
export const configQuery = { queryKey: ["config"], queryFn: () => api.get<UiConfig>("/config"), staleTime: Infinity };
export const sessionQuery = {
  queryKey: ["session"],
  queryFn: async () => {
    const info = await api.get<SessionInfo>("/session");
    setCsrfToken(info.csrf_token);
    return info;
  },
  staleTime: Infinity,
};

let nextToast = 1;

/** The toasts' top edge, kept under the masthead (measured while toasts show, and on resizes) so they
 * never cover it; null without a masthead (sign-in), where PatternFly's default stands. */
function useToastTop(showing: boolean): number | null {
  const [top, setTop] = useState<number | null>(null);
  useLayoutEffect(() => {
    if (!showing) return;
    const place = () => {
      const masthead = document.querySelector(".pf-v6-c-masthead");
      setTop(toastTop(masthead ? masthead.getBoundingClientRect().bottom : null));
    };
    place();
    window.addEventListener("resize", place);
    return () => window.removeEventListener("resize", place);
  }, [showing]);
  return top;
}

export function SessionProvider({ children, fallback }: { children: ReactNode; fallback: ReactNode }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const [notice, setNotice] = useState<string | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const toastsTop = useToastTop(toasts.length > 0);
  const config = useQuery(configQuery);
  const session = useQuery(sessionQuery);

  const toast = useCallback((variant: Toast["variant"], title: string) => {
    const id = nextToast++;
    setToasts((list) => withToast(list, { id, variant, title }));
    window.setTimeout(() => setToasts((list) => list.filter((t) => t.id !== id)), 8000);
  }, []);

  useEffect(() => {
    whenRefused(() => {
      void api.get<SessionInfo>("/session").then((info) => {
        if (info.user) return; // still signed in: the refusal was about the thing asked for
        setCsrfToken(null);
        setNotice(SESSION_ENDED);
        queryClient.setQueryData<SessionInfo>(["session"], info);
        queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== "session" && q.queryKey[0] !== "config" });
        navigate(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
      });
    });
    return () => whenRefused(null);
  }, [queryClient, navigate, location.pathname, location.search]);

  useEffect(() => {
    const title = config.data?.config.REGISTRY_TITLE;
    if (title) document.title = title;
  }, [config.data]);

  const signIn = useCallback(
    async (username: string, password: string) => {
      const result = await api.post<{ csrf_token: string }>("/signin", { username, password });
      setCsrfToken(result.csrf_token);
      setNotice(null);
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== "config" });
      await queryClient.fetchQuery({ ...sessionQuery, staleTime: 0 });
    },
    [queryClient],
  );

  const signOut = useCallback(async () => {
    try {
      await api.post("/signout");
    } finally {
      setCsrfToken(null);
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== "config" });
      queryClient.setQueryData<SessionInfo>(["session"], { user: null, csrf_token: null, anonymous_access: true });
      await queryClient.invalidateQueries({ queryKey: ["session"] });
      navigate("/signin");
    }
  }, [queryClient, navigate]);

  const value = useMemo<SessionValue | null>(() => {
    if (!config.data || !session.data) return null;
    return {
      config: config.data,
      user: session.data.user,
      readOnly: config.data.registry_state === "readonly",
      signIn,
      signOut,
      notice,
      toast,
    };
  }, [config.data, session.data, signIn, signOut, notice, toast]);

  if (config.error || session.error) {
    return (
      <Alert variant="danger" title="The registry did not answer" isInline>
        {String((config.error || session.error) as Error)}
      </Alert>
    );
  }
  if (!value) return <>{fallback}</>;
  return (
    <SessionContext.Provider value={value}>
      {children}
      <AlertGroup isToast isLiveRegion className="meridian-toasts" data-testid="toasts"
                  style={toastsTop === null ? undefined : { insetBlockStart: `${toastsTop}px` }}>
        {toasts.map((t) => (
          <Alert
            key={t.id}
            variant={t.variant}
            title={t.title}
            actionClose={<AlertActionCloseButton onClose={() => setToasts((list) => list.filter((x) => x.id !== t.id))} />}
          />
        ))}
      </AlertGroup>
    </SessionContext.Provider>
  );
}
