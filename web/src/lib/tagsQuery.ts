// The Tags tab's list call, built from the URL, so the repository page can start it at the same time
// as its own call (one round trip less before the tags show).
import { api, repoPath } from "./api";
import { filterParams, TextFilter } from "./filters";
import type { QueryClient } from "@tanstack/react-query";

import type { Paged, Repository, TagRow } from "../types";

export type TagSortKey = "name" | "digest" | "size" | "last_modified" | "expires";
export const TAG_SORT_KEYS: TagSortKey[] = ["name", "digest", "size", "last_modified", "expires"];
export const PER_PAGE_OPTIONS = [10, 25, 50, 100];

export interface TagListState {
  page: number;
  perPage: number;
  sort: { by: TagSortKey; order: "asc" | "desc" };
}

export function tagListState(params: URLSearchParams): TagListState {
  const perPage = Number(params.get("perPage"));
  return {
    page: Math.max(1, Number(params.get("page")) || 1),
    perPage: PER_PAGE_OPTIONS.includes(perPage) ? perPage : 25,
    sort: {
      by: TAG_SORT_KEYS.find((k) => k === params.get("sort")) ?? "name",
      order: params.get("order") === "desc" ? "desc" : "asc",
    },
  };
}

export function urlFilter(params: URLSearchParams): TextFilter {
  return { text: params.get("filter") ?? "", regex: params.get("regex") === "true" };
}

export function tagsQuery(filter: TextFilter, state: TagListState): Record<string, string | number> {
  return { ...filterParams(filter), sort: state.sort.by, order: state.sort.order, page: state.page, limit: state.perPage };
}

export type TagsPage = Paged & { tags: TagRow[]; can_write: boolean };

export function tagsQueryOptions(repository: string, query: Record<string, string | number>) {
  return {
    queryKey: ["tags", repository, query],
    queryFn: () => api.get<TagsPage>(`/browse/repository/${repoPath(repository)}/tags`, query),
  };
}

export function repositoryQueryOptions(repository: string) {
  return {
    queryKey: ["repository", repository],
    queryFn: () => api.get<Repository>(`/repository/${repoPath(repository)}`, { includeTags: "false" }),
  };
}

/** At load, before the session is known: the first page's data is fetched beside /config and
 * /session instead of after them (a repository opened on its Tags tab shows one round trip sooner). */
export function prefetchFirstPage(client: QueryClient, path: string, search: string): void {
  const parts = path.split("/").filter(Boolean);
  if (parts[0] !== "repository" || parts.length < 3) return;
  const repository = parts.slice(1).join("/");
  const params = new URLSearchParams(search);
  void client.prefetchQuery(repositoryQueryOptions(repository));
  if (params.get("tab") === "tags") void client.prefetchQuery(tagsQueryOptions(repository, tagsQuery(urlFilter(params), tagListState(params))));
}
