// One row of tag history in words.
export interface HistoryLike {
  reversion: boolean;
  is_live: boolean;
  end_ts: number | null;
  expiration: string | null;
}

export function describeChange(row: HistoryLike, now: Date = new Date()): string {
  if (row.reversion) return "Restored";
  if (row.is_live) return "Pushed or moved";
  if (row.end_ts !== null && row.expiration && new Date(row.expiration).getTime() / 1000 <= row.end_ts + 1 && new Date(row.expiration) <= now) return "Expired";
  return "Deleted or moved away";
}
