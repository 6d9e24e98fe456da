// The toasts every page raises (session.tsx shows them) sit in the top-right corner under the
// masthead. One at a time, the newest: a stack grows down over the page's tabs and headings (two
// already reach an organisation's tab row at 1366 px), and each toast lasts seconds anyway.
export const MAX_TOASTS = 1;

export interface Toast {
  id: number;
  variant: "success" | "danger" | "warning" | "info";
  title: string;
}

/** The list with `toast` added; past `max`, the oldest go. */
export function withToast(list: Toast[], toast: Toast, max = MAX_TOASTS): Toast[] {
  return [...list, toast].slice(-max);
}

/** Where the toast group's top goes: a small gap under the masthead's bottom edge (which a
 * read-only banner pushes down); null when there is no masthead (sign-in), for PatternFly's default. */
export function toastTop(mastheadBottom: number | null, gap = 16): number | null {
  return mastheadBottom === null ? null : Math.max(0, Math.round(mastheadBottom)) + gap;
}
