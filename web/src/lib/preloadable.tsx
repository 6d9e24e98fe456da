// A route component loaded in its own chunk that, once its chunk has arrived, renders directly
// instead of through React.lazy. lazy() suspends on its first render even when the import already
// resolved, and React 18 then holds the revealed page back (its Suspense reveal throttle, up to
// 500 ms after the fallback showed) — the page that was preloaded for speed would show late.
import { ComponentType, lazy } from "react";

export type Preloadable = ComponentType & { preload: () => Promise<unknown> };

/** Route pages take no props: they read the URL. */
export function preloadable(load: () => Promise<{ default: ComponentType }>): Preloadable {
  let loaded: ComponentType | null = null;
  let pending: Promise<{ default: ComponentType }> | null = null;
  const preload = () => {
    pending ??= load().then((module) => {
      loaded = module.default;
      return module;
    });
    return pending;
  };
  const Lazy = lazy(preload);
  const Route = () => {
    const Loaded = loaded;
    return Loaded ? <Loaded /> : <Lazy />;
  };
  return Object.assign(Route, { preload });
}
