// Durations from config (TAG_EXPIRATION_OPTIONS: "0s", "1w", "30d", "365d") as people read them.
const UNITS: [number, string][] = [
  [365 * 86400, "year"], [30 * 86400, "month"], [7 * 86400, "week"], [86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"],
];

/** "1 week", "1 month", "2 years"; 0 is "Never" (deleted tags are not kept at all). The largest
 * unit that divides the duration exactly is used, so 4 weeks stays "4 weeks". */
export function durationLabel(seconds: number): string {
  if (seconds <= 0) return "Never";
  const [size, unit] = UNITS.find(([size]) => seconds % size === 0) ?? [1, "second"];
  const count = seconds / size;
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}
