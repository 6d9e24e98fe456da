// The state of one list (page, page size, sort, filter) as it lives in the URL, the query it sends
// to the server, and the same paging and sorting done locally for the few small lists the API
// returns whole (default permissions, service keys).
import { filterParams, TextFilter } from "./filters";

export const PER_PAGE_OPTIONS = [10, 25, 50, 100];

export interface ListSpec<K extends string> {
  sorts: readonly K[];
  sort: K;
  order?: "asc" | "desc";
  perPage?: number;
}

export interface ListState<K extends string> {
  page: number;
  perPage: number;
  sort: K;
  order: "asc" | "desc";
  filter: TextFilter;
}

/** The list's state from URL parameters (each name prefixed, so lists on one page do not collide);
 * anything unknown falls back to the spec's defaults. */
export function readList<K extends string>(params: URLSearchParams, spec: ListSpec<K>, prefix = ""): ListState<K> {
  const get = (name: string) => params.get(prefix + name);
  const perPage = Number(get("perPage"));
  return {
    page: Math.max(1, Math.floor(Number(get("page"))) || 1),
    perPage: PER_PAGE_OPTIONS.includes(perPage) ? perPage : spec.perPage ?? 25,
    sort: spec.sorts.find((s) => s === get("sort")) ?? spec.sort,
    order: get("order") === "desc" ? "desc" : get("order") === "asc" ? "asc" : spec.order ?? "asc",
    filter: { text: get("filter") ?? "", regex: get("regex") === "true" },
  };
}

/** URL parameters for a state: defaults are left out so links stay short. */
export function writeList<K extends string>(state: ListState<K>, spec: ListSpec<K>, prefix = ""): Record<string, string | null> {
  return {
    [`${prefix}page`]: state.page > 1 ? String(state.page) : null,
    [`${prefix}perPage`]: state.perPage !== (spec.perPage ?? 25) ? String(state.perPage) : null,
    [`${prefix}sort`]: state.sort !== spec.sort ? state.sort : null,
    [`${prefix}order`]: state.order !== (spec.order ?? "asc") ? state.order : null,
    [`${prefix}filter`]: state.filter.text || null,
    [`${prefix}regex`]: state.filter.regex ? "true" : null,
  };
}

/** What the list call sends: the server filters, sorts and pages. */
export function listQuery<K extends string>(state: ListState<K>): Record<string, string | number> {
  return { ...filterParams(state.filter), sort: state.sort, order: state.order, page: state.page, limit: state.perPage };
}

export type SortValue = string | number | Date | boolean | null | undefined;

/** Orders values by their type: dates by time, numbers by size, text by collation; empty values last
 * in either direction (a date column must never sort as text: "Feb 2" is not before "Jan 10"). */
export function compareValues(a: SortValue, b: SortValue): number {
  const empty = (v: SortValue) => v === null || v === undefined || v === "";
  if (empty(a) || empty(b)) return empty(a) === empty(b) ? 0 : empty(a) ? 1 : -1;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

/** Filter (substring or regex on `name`), sort and page a whole list in the browser. */
export function localPage<T, K extends string>(
  rows: T[], state: ListState<K>, name: (row: T) => string, value: (row: T, key: K) => SortValue,
): { rows: T[]; total: number } {
  let matcher: (text: string) => boolean = () => true;
  if (state.filter.text) {
    if (state.filter.regex) {
      try {
        const pattern = new RegExp(state.filter.text);
        matcher = (text) => pattern.test(text);
      } catch {
        matcher = () => false;
      }
    } else {
      matcher = (text) => text.includes(state.filter.text);
    }
  }
  const kept = rows.filter((row) => matcher(name(row)));
  const direction = state.order === "desc" ? -1 : 1;
  kept.sort((a, b) => {
    const va = value(a, state.sort);
    const vb = value(b, state.sort);
    const empty = (v: SortValue) => v === null || v === undefined || v === "";
    if (empty(va) || empty(vb)) return compareValues(va, vb); // empty stays last
    return direction * compareValues(va, vb) || compareValues(name(a), name(b));
  });
  const start = (state.page - 1) * state.perPage;
  return { rows: kept.slice(start, start + state.perPage), total: kept.length };
}
