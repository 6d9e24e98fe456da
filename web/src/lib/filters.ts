// Filters typed in a toolbar, checked before they go to the server (which applies them).
export interface TextFilter {
  text: string;
  regex: boolean;
}

/** null when the filter can be sent; else why not. The server uses PostgreSQL regular expressions;
 * the common subset (classes, anchors, alternation, quantifiers) behaves the same in both. */
export function filterProblem(filter: TextFilter): string | null {
  if (!filter.regex || !filter.text) return null;
  if (filter.text.length > 256) return "The regular expression is longer than 256 characters";
  try {
    new RegExp(filter.text);
  } catch (error) {
    return `Invalid regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, "")}`;
  }
  return null;
}

/** Query parameters for a list call: empty text sends nothing. */
export function filterParams(filter: TextFilter): Record<string, string> {
  if (!filter.text) return {};
  return filter.regex ? { filter: filter.text, regex: "true" } : { filter: filter.text };
}

export type SortOrder = "asc" | "desc";
export interface Sort<K extends string> {
  by: K;
  order: SortOrder;
}

/** Clicking a column header: the same column flips its order, another starts with `initial`. */
export function nextSort<K extends string>(current: Sort<K>, by: K, initial: SortOrder = "asc"): Sort<K> {
  if (current.by === by) return { by, order: current.order === "asc" ? "desc" : "asc" };
  return { by, order: initial };
}

/** Page numbers are 1-based; after a change of filter or page size the page goes back to 1, and a
 * page past the end (after deletes) goes to the last one. */
export function clampPage(page: number, perPage: number, total: number): number {
  const last = Math.max(1, Math.ceil(total / perPage));
  return Math.min(Math.max(1, page), last);
}

/** The names selected on the current page that are still there after a refetch. */
export function keepSelected(selected: string[], visible: string[]): string[] {
  const present = new Set(visible);
  return selected.filter((name) => present.has(name));
}
