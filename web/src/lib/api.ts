// The one way the UI talks to the registry: /api/v1 and /config, JSON, the session cookie, and the
// CSRF token on every change. A 401 on a session that was signed in means it ended.
export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    public errorType?: string,
    public detail?: unknown,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onAuthFailure: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when a request made with a session is refused (401) or finds nothing (404): the shell
 * asks /session whether the session is still alive, and returns to sign-in when it is not. */
export function whenRefused(callback: (() => void) | null): void {
  onAuthFailure = callback;
}

type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function request<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const url = path.startsWith("/config") ? path : `/api/v1${path}`;
  const response = await fetch(withQuery(url, options.query), {
    method,
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 204) return undefined as T;
  let data: unknown = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error_message: text };
    }
  }
  if (!response.ok) {
    const body = (data ?? {}) as { error_message?: string; detail?: unknown; error_type?: string; message?: string };
    const message = body.error_message ?? body.message ?? `${response.status} ${response.statusText}`;
    if ((response.status === 401 || response.status === 404) && csrfToken && onAuthFailure && path !== "/signin" && path !== "/session") {
      onAuthFailure();
    }
    throw new ApiError(response.status, message, body.error_type, body.detail);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", path, { query }),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, { body: body ?? {} }),
  put: <T>(path: string, body?: unknown) => request<T>("PUT", path, { body: body ?? {} }),
  del: <T>(path: string, body?: unknown) => request<T>("DELETE", path, body === undefined ? {} : { body }),
};

/** A repository or tag path segment: names may hold "/" (repositories) but nothing to escape. */
export function repoPath(repository: string): string {
  return repository.split("/").map(encodeURIComponent).join("/");
}
