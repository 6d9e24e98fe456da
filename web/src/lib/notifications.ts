// Notifications as the UI offers them: the events and methods, what each needs, and the checks
// done before the API's own.

export type Method = "webhook" | "slack" | "email";

export interface EventChoice {
  value: string;
  label: string;
  fires: boolean; // false: accepted and kept for later (mirroring, scanning)
  tagFilter: boolean;
  days: boolean;
}

export const EVENTS: EventChoice[] = [
  { value: "repo_push", label: "Push to Repository", fires: true, tagFilter: true, days: false },
  { value: "repo_tag_deleted", label: "Tag deleted or expired", fires: true, tagFilter: true, days: false },
  { value: "repo_image_expiry", label: "Image expiry trigger", fires: true, tagFilter: true, days: true },
  { value: "quota_warning", label: "Quota warning", fires: true, tagFilter: false, days: false },
  { value: "quota_error", label: "Quota exceeded", fires: true, tagFilter: false, days: false },
  { value: "vulnerability_found", label: "Package Vulnerability Found (not scanned yet)", fires: false, tagFilter: false, days: false },
  { value: "repo_mirror_sync_started", label: "Repository mirror started (no mirroring yet)", fires: false, tagFilter: false, days: false },
  { value: "repo_mirror_sync_success", label: "Repository mirror successful (no mirroring yet)", fires: false, tagFilter: false, days: false },
  { value: "repo_mirror_sync_failed", label: "Repository mirror unsuccessful (no mirroring yet)", fires: false, tagFilter: false, days: false },
];

export const METHODS: { value: Method; label: string }[] = [
  { value: "webhook", label: "Webhook POST" },
  { value: "slack", label: "Slack" },
  { value: "email", label: "E-mail" },
];

export function eventLabel(value: string): string {
  return EVENTS.find((e) => e.value === value)?.label ?? value;
}

export function methodLabel(value: string): string {
  return METHODS.find((m) => m.value === value)?.label ?? value;
}

export interface NotificationForm {
  title: string;
  event: string;
  method: Method;
  url: string;
  email: string;
  tags: string;
  days: string;
  format: "quay" | "cloudevents";
  template: string;
  headers: string;
}

export const EMPTY_FORM: NotificationForm = {
  title: "", event: "repo_push", method: "webhook", url: "", email: "", tags: "", days: "7", format: "quay", template: "",
  headers: "",
};

/** "Name: value" per line into an object; null when a line is not a header. */
export function parseHeaders(text: string): Record<string, string> | null {
  const headers: Record<string, string> = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const found = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+):\s*(.*)$/.exec(line);
    if (!found) return null;
    headers[found[1]] = found[2];
  }
  return headers;
}

export function parseTags(text: string): string[] {
  return text.split(/[\s,]+/).map((t) => t.trim()).filter(Boolean);
}

/** The API's body, or the first problem found. */
export function notificationBody(form: NotificationForm): { body: Record<string, unknown> | null; error: string | null } {
  const event = EVENTS.find((e) => e.value === form.event);
  if (!event) return { body: null, error: "Choose an event" };
  const config: Record<string, unknown> = {};
  if (form.method === "email") {
    if (!/^[^\s@<>,;]+@[^\s@<>,;]+$/.test(form.email.trim())) return { body: null, error: "Enter one e-mail address" };
    config.email = form.email.trim();
  } else {
    if (!/^https?:\/\/\S+$/.test(form.url.trim())) return { body: null, error: "Enter an http:// or https:// URL" };
    config.url = form.url.trim();
  }
  if (form.method === "webhook") {
    if (form.template.trim()) {
      try {
        config.template = JSON.parse(form.template);
      } catch {
        return { body: null, error: "The template must be a JSON document" };
      }
    }
    if (form.format !== "quay") config.format = form.format;
    const headers = parseHeaders(form.headers);
    if (headers === null) return { body: null, error: "Write one header per line: Name: value" };
    if (Object.keys(headers).length) config.headers = headers;
  }
  const eventConfig: Record<string, unknown> = {};
  if (event.tagFilter && form.tags.trim()) eventConfig.tags = parseTags(form.tags);
  if (event.days) {
    const days = Number(form.days);
    if (!/^\d+$/.test(form.days.trim()) || days < 1 || days > 365) return { body: null, error: "Days must be a whole number from 1 to 365" };
    eventConfig.days = days;
  }
  return { body: { event: form.event, method: form.method, config, eventConfig, title: form.title.trim() }, error: null };
}

/** Where a notification goes, for the table. */
export function target(method: string, config: Record<string, unknown>): string {
  if (method === "email") return String(config.email ?? "");
  return String(config.url ?? "");
}
