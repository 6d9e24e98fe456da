// Label editing: "key=value" lines in, the API's add/delete calls out.
export const LABEL_FORMAT_ERROR = "Invalid label format, must be key value separated by =";
const KEY_RE = /^[0-9A-Za-z/._-]{1,255}$/;

export interface Label {
  id: string;
  key: string;
  value: string;
  source_type?: string;
  media_type?: string;
}

export type Parsed = { ok: true; key: string; value: string } | { ok: false; error: string };

/** `key=value` (the value may hold more `=`); the key must be non-empty. */
export function parseLabel(text: string): Parsed {
  const at = text.indexOf("=");
  if (at < 0) return { ok: false, error: LABEL_FORMAT_ERROR };
  const key = text.slice(0, at).trim();
  const value = text.slice(at + 1);
  if (!key) return { ok: false, error: LABEL_FORMAT_ERROR };
  if (!KEY_RE.test(key)) return { ok: false, error: `Invalid label key "${key}": use 1-255 of A-Z a-z 0-9 / . _ -` };
  return { ok: true, key, value };
}

export interface LabelChanges {
  add: { key: string; value: string }[];
  remove: Label[];
  errors: string[];
}

/** What to add and what to delete to go from `existing` to the edited `key=value` entries.
 * A label whose key and value are unchanged is left alone; labels from the image (source_type
 * "manifest") cannot be removed through the API and are never in `remove`. */
export function labelChanges(existing: Label[], edited: string[]): LabelChanges {
  const errors: string[] = [];
  const wanted = new Map<string, { key: string; value: string }>();
  for (const line of edited) {
    if (!line.trim()) continue;
    const parsed = parseLabel(line);
    if (!parsed.ok) {
      errors.push(parsed.error);
      continue;
    }
    wanted.set(`${parsed.key}\u0000${parsed.value}`, { key: parsed.key, value: parsed.value });
  }
  const have = new Set(existing.map((l) => `${l.key}\u0000${l.value}`));
  const add = [...wanted.entries()].filter(([k]) => !have.has(k)).map(([, v]) => v);
  const remove = existing.filter((l) => l.source_type !== "manifest" && !wanted.has(`${l.key}\u0000${l.value}`));
  return { add, remove, errors: [...new Set(errors)] };
}

export function labelText(label: { key: string; value: string }): string {
  return `${label.key}=${label.value}`;
}
