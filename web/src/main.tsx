import "@patternfly/react-core/dist/styles/base.css";
import "./app.css";

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";

import { ApiError } from "./lib/api";
import { prefetchFirstPage } from "./lib/tagsQuery";
import { applyAppearance, followDevice, storedAppearance } from "./lib/theme";
import { App, preloadRoute } from "./App";
import { configQuery, sessionQuery } from "./session";

applyAppearance(storedAppearance());
preloadRoute(window.location.pathname);
followDevice();

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: false,
      // A 4xx will not change by asking again.
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});

void queryClient.prefetchQuery(configQuery);
void queryClient.prefetchQuery(sessionQuery);
prefetchFirstPage(queryClient, window.location.pathname, window.location.search);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <App />
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
);
