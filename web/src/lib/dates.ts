// Dates as the UI shows and sends them. Shown in the browser's time zone; sent as epoch seconds
// (expiration) or ISO 8601 instants (history ranges).
const DATE_TIME = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "short" });

export function formatDateTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined || value === "") return "Never";
  const moment = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(moment.getTime())) return "—";
  return DATE_TIME.format(moment);
}

/** formatDateTime as its date and its time ("Jan 2, 2030," and "10:30 AM"), for narrow columns that may
 * break the line between them but never inside either; "Never" and "—" stay whole. */
export function dateTimeParts(value: string | number | Date | null | undefined): [string] | [string, string] {
  const text = formatDateTime(value);
  const cut = text.lastIndexOf(", ");
  return cut < 0 ? [text] : [text.slice(0, cut + 1), text.slice(cut + 2)];
}

/** "in 3 days", "5 minutes ago": for expirations and last-modified columns. */
export function relative(value: string | null | undefined, now: Date = new Date()): string {
  if (!value) return "Never";
  const moment = new Date(value);
  const seconds = Math.round((moment.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(seconds);
  const units: [number, Intl.RelativeTimeFormatUnit][] = [
    [60, "second"], [3600, "minute"], [86400, "hour"], [86400 * 30, "day"], [86400 * 365, "month"], [Infinity, "year"],
  ];
  const divisors: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400, month: 86400 * 30, year: 86400 * 365 };
  const [, unit] = units.find(([limit]) => abs < limit)!;
  return new Intl.RelativeTimeFormat("en", { numeric: "auto" }).format(Math.round(seconds / divisors[unit]), unit);
}

/** `YYYY-MM-DD` and `HH:MM` from date and time inputs, in the browser's zone, to epoch seconds. */
export function localToEpoch(date: string, time: string): number | null {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const t = /^(\d{1,2}):(\d{2})$/.exec(time || "00:00");
  if (!d || !t) return null;
  const [year, month, day, hour, minute] = [+d[1], +d[2], +d[3], +t[1], +t[2]];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59) return null;
  const moment = new Date(year, month - 1, day, hour, minute, 0, 0);
  if (moment.getMonth() !== month - 1 || moment.getDate() !== day) return null; // 2026-02-31
  return Math.floor(moment.getTime() / 1000);
}

export type ExpirationCheck = { ok: true; epoch: number } | { ok: false; error: string };

export function checkExpiration(date: string, time: string, now: Date = new Date()): ExpirationCheck {
  const epoch = localToEpoch(date, time);
  if (epoch === null) return { ok: false, error: "Enter a date (YYYY-MM-DD) and a time (HH:MM)" };
  if (epoch * 1000 <= now.getTime()) return { ok: false, error: "The expiration must be in the future" };
  return { ok: true, epoch };
}

/** The date and time inputs' values for an instant, in the browser's zone. */
export function toInputs(value: Date): { date: string; time: string } {
  const pad = (n: number) => String(n).padStart(2, "0");
  return {
    date: `${value.getFullYear()}-${pad(value.getMonth() + 1)}-${pad(value.getDate())}`,
    time: `${pad(value.getHours())}:${pad(value.getMinutes())}`,
  };
}

/** From/To date inputs (whole local days, To inclusive) to the API's starttime/endtime. */
export function rangeParams(from: string, to: string): { params: Record<string, string>; error: string | null } {
  const params: Record<string, string> = {};
  const start = from ? localToEpoch(from, "00:00") : null;
  const endDay = to ? localToEpoch(to, "00:00") : null;
  if (from && start === null) return { params, error: "From is not a date" };
  if (to && endDay === null) return { params, error: "To is not a date" };
  if (start !== null) params.starttime = new Date(start * 1000).toISOString();
  if (endDay !== null) {
    const next = new Date(endDay * 1000);
    next.setDate(next.getDate() + 1);
    params.endtime = next.toISOString();
  }
  if (start !== null && endDay !== null && start > endDay) return { params: {}, error: "From is after To" };
  return { params, error: null };
}

export function humanSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "—";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function shortDigest(digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return hex ? `${algorithm}:${hex.slice(0, 12)}` : digest;
}
