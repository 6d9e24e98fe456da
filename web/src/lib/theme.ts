// Appearance: Light, Dark or Device-based (follows prefers-color-scheme), remembered in this browser.
export type Appearance = "light" | "dark" | "device";
const KEY = "meridian.appearance";
const DARK_CLASS = "pf-v6-theme-dark";

export function storedAppearance(): Appearance {
  const value = typeof localStorage === "undefined" ? null : localStorage.getItem(KEY);
  return value === "light" || value === "dark" || value === "device" ? value : "device";
}

export function isDark(appearance: Appearance, prefersDark: boolean): boolean {
  return appearance === "dark" || (appearance === "device" && prefersDark);
}

const media = () => window.matchMedia("(prefers-color-scheme: dark)");

export function applyAppearance(appearance: Appearance): void {
  document.documentElement.classList.toggle(DARK_CLASS, isDark(appearance, media().matches));
}

export function rememberAppearance(appearance: Appearance): void {
  localStorage.setItem(KEY, appearance);
  applyAppearance(appearance);
}

/** Keeps a device-based appearance in step with the system setting. */
export function followDevice(): () => void {
  const listener = () => applyAppearance(storedAppearance());
  const query = media();
  query.addEventListener("change", listener);
  return () => query.removeEventListener("change", listener);
}
