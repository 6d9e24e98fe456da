// Usage logs: daily counts for the chart, what each kind of entry means, and where an export goes.
export interface LogEntry {
  kind: string;
  metadata: Record<string, unknown>;
  ip: string | null;
  datetime: string;
  namespace: string | null;
  repository: string | null;
  performer?: { name: string };
}

export interface Aggregated {
  kind: string;
  count: number;
  datetime: string; // the UTC day, YYYY-MM-DD
}

export interface DayCount {
  date: string;
  count: number;
  kinds: Record<string, number>;
}

/** One bar per day from `from` to `to` (YYYY-MM-DD, both included), days without entries at 0. */
export function dailyCounts(aggregated: Aggregated[], from: string, to: string): DayCount[] {
  const byDay = new Map<string, DayCount>();
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start || end - start > 400 * 86400_000) return [];
  for (let t = start; t <= end; t += 86400_000) {
    const date = new Date(t).toISOString().slice(0, 10);
    byDay.set(date, { date, count: 0, kinds: {} });
  }
  for (const row of aggregated) {
    const day = byDay.get(row.datetime.slice(0, 10));
    if (!day) continue;
    day.count += row.count;
    day.kinds[row.kind] = (day.kinds[row.kind] ?? 0) + row.count;
  }
  return [...byDay.values()];
}

const KIND_TEXT: Record<string, string> = {
  push_repo: "Push", pull_repo: "Pull", delete_tag: "Delete tag", create_tag: "Create tag", move_tag: "Move tag",
  create_repo: "Create repository", delete_repo: "Delete repository", change_repo_visibility: "Change visibility",
  change_repo_state: "Change repository state", change_repo_permission: "Change permission",
  delete_repo_permission: "Remove permission", create_robot: "Create robot", delete_robot: "Delete robot",
  regenerate_robot_token: "Regenerate robot token", org_create: "Create organisation", org_delete: "Delete organisation",
  org_change_details: "Change organisation settings", org_create_team: "Create team", org_delete_team: "Delete team",
  org_set_team_role: "Change team role", org_add_team_member: "Add team member", org_remove_team_member: "Remove team member",
  create_prototype_permission: "Create default permission", modify_prototype_permission: "Change default permission",
  delete_prototype_permission: "Delete default permission", export_logs: "Export usage logs", login_success: "Sign-in",
  login_failure: "Failed sign-in", user_create: "Create user", user_delete: "Delete user", user_change_email: "Change e-mail",
  user_change_password: "Change password", user_disable: "Disable user", user_enable: "Enable user",
  service_key_create: "Add service key", service_key_approve: "Approve service key", service_key_extend: "Extend service key",
  service_key_delete: "Delete service key", change_tag_expiration: "Change tag expiration", restore_tag: "Restore tag",
  create_api_token: "Create API token", revoke_api_token: "Revoke API token",
};

/** "Create robot" for create_robot; unknown kinds read as words ("some_kind" -> "Some kind"). */
export function kindLabel(kind: string): string {
  const known = KIND_TEXT[kind];
  if (known) return known;
  const words = kind.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The entry's details in one line: its metadata as key=value, values as JSON when not text. */
export function describeMetadata(metadata: Record<string, unknown>): string {
  return Object.entries(metadata ?? {})
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}

export type ExportTarget = { ok: true; body: { callback_url: string } | { callback_email: string } } | { ok: false; error: string };

/** An export goes to an http(s) callback URL or an e-mail address; anything else is refused before
 * it is sent. */
export function exportTarget(text: string): ExportTarget {
  const value = text.trim();
  if (/^https?:\/\/\S+$/i.test(value)) {
    try {
      const url = new URL(value);
      if (url.hostname) return { ok: true, body: { callback_url: value } };
    } catch {
      // falls through to the error below
    }
  }
  if (/^[^\s@]+@[^\s@]+$/.test(value)) return { ok: true, body: { callback_email: value } };
  return { ok: false, error: "Enter an e-mail address or a callback URL starting with http:// or https://" };
}
