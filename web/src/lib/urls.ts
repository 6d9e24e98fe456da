// Links and images from config or user content: only http(s) and same-site paths are followed, so a
// `javascript:` or `data:` URL never becomes a link.
export function safeUrl(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (text.startsWith("/") && !text.startsWith("//")) return text;
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** The route of a repository page and a tag page; a repository name may hold several "/" parts. */
export function repositoryRoute(repository: string, tab?: string): string {
  return `/repository/${repository}${tab ? `?tab=${tab}` : ""}`;
}

export function tagRoute(repository: string, tag: string): string {
  return `/tag/${repository}/${encodeURIComponent(tag)}`;
}

/** `/tag/<namespace>/<repo...>/<tag>`: the last part is the tag, the rest the repository. */
export function parseTagRoute(splat: string): { repository: string; tag: string } | null {
  const parts = splat.split("/").filter(Boolean);
  if (parts.length < 3) return null;
  return { repository: parts.slice(0, -1).join("/"), tag: decodeURIComponent(parts[parts.length - 1]) };
}

export type SearchHit =
  | { kind: "repository"; repository: string }
  | { kind: "tag"; repository: string; tag: string }
  | { kind: "digest"; repository: string; tags: string[] };

/** Where a search result leads: a repository, a tag's page, or for a digest its first tag's page
 * (an untagged manifest: the repository's Tags tab). */
export function searchTarget(hit: SearchHit): string {
  if (hit.kind === "repository") return repositoryRoute(hit.repository);
  if (hit.kind === "tag") return tagRoute(hit.repository, hit.tag);
  return hit.tags.length ? tagRoute(hit.repository, hit.tags[0]) : repositoryRoute(hit.repository, "tags");
}

/** An organisation's page, on one of its tabs. */
export function organizationRoute(name: string, tab?: string): string {
  return `/organization/${encodeURIComponent(name)}${tab ? `?tab=${tab}` : ""}`;
}
