// Quotas as the UI shows and sends them: Quay's limit strings ("10 GiB") and the usage bar.

const BINARY = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
const DECIMAL = ["KB", "MB", "GB", "TB", "PB", "EB"];

/** Bytes of "10 GiB", "500 MB", "1G", "2048"; null when it is not one of Quay's forms. */
export function parseLimit(text: string): number | null {
  const found = /^(\d+)\s?([A-Za-z]*)$/.exec(text.trim());
  if (!found) return null;
  const number = Number(found[1]);
  const unit = found[2];
  if (!unit || unit === "B") return number > 0 ? number : null;
  const binary = BINARY.findIndex((u) => u === unit || u.slice(0, 2) === unit);
  if (binary >= 0) return number * 1024 ** (binary + 1);
  const decimal = DECIMAL.findIndex((u) => u === unit || u[0] === unit);
  if (decimal >= 0) return number * 1000 ** (decimal + 1);
  return null;
}

export interface QuotaReport {
  quota_bytes: number;
  configured_quota: number | null;
  reject_bytes: number | null;
  percent_consumed: number | null;
  default_config: boolean;
}

/** Percent of the quota used (capped at 100 for the bar), and its colour: warning past the first
 * Warning limit (or 80 %), danger at the Reject limit. */
export function usageBar(report: QuotaReport, warningPercent: number | null): { percent: number; variant: "success" | "warning" | "danger" } {
  const limit = report.configured_quota;
  if (!limit) return { percent: 0, variant: "success" };
  const percent = Math.min(100, (100 * report.quota_bytes) / limit);
  if (report.reject_bytes !== null && report.quota_bytes >= report.reject_bytes) return { percent, variant: "danger" };
  if (percent >= (warningPercent ?? 80)) return { percent, variant: "warning" };
  return { percent, variant: "success" };
}

export function checkPercent(text: string): number | null {
  if (!/^\d{1,3}$/.test(text.trim())) return null;
  const value = Number(text);
  return value >= 1 && value <= 100 ? value : null;
}
