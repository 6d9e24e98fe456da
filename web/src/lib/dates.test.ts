import { describe, expect, it } from "vitest";

import { checkExpiration, dateTimeParts, formatDateTime, humanSize, localToEpoch, rangeParams, relative, shortDigest, toInputs } from "./dates";

// vitest runs with TZ=UTC (see package.json), so local time is UTC here.
describe("dates", () => {
  it("formats instants, epoch seconds and missing values", () => {
    expect(formatDateTime("2030-01-02T10:30:00+00:00")).toBe("Jan 2, 2030, 10:30 AM");
    expect(formatDateTime(1893580200)).toBe("Jan 2, 2030, 10:30 AM");
    expect(formatDateTime(null)).toBe("Never");
    expect(formatDateTime("not a date")).toBe("—");
  });
  it("splits a date and time where a narrow column may break the line", () => {
    expect(dateTimeParts("2030-01-02T10:30:00+00:00")).toEqual(["Jan 2, 2030,", "10:30 AM"]);
    expect(dateTimeParts(null)).toEqual(["Never"]);
    expect(dateTimeParts("not a date")).toEqual(["—"]);
  });
  it("turns date and time inputs into epoch seconds, refusing impossible dates", () => {
    expect(localToEpoch("2030-01-02", "10:30")).toBe(1893580200);
    expect(localToEpoch("2026-02-31", "00:00")).toBeNull();
    expect(localToEpoch("2026-13-01", "00:00")).toBeNull();
    expect(localToEpoch("2026-01-01", "24:00")).toBeNull();
    expect(localToEpoch("yesterday", "")).toBeNull();
  });
  it("an expiration must be in the future", () => {
    const now = new Date("2030-01-01T00:00:00Z");
    expect(checkExpiration("2030-01-02", "10:30", now)).toEqual({ ok: true, epoch: 1893580200 });
    expect(checkExpiration("2029-12-31", "23:59", now)).toEqual({ ok: false, error: "The expiration must be in the future" });
    expect(checkExpiration("", "", now).ok).toBe(false);
  });
  it("round-trips the inputs of an instant", () => {
    expect(toInputs(new Date("2030-01-02T10:30:00Z"))).toEqual({ date: "2030-01-02", time: "10:30" });
  });
  it("a date range covers whole days, To included", () => {
    expect(rangeParams("2026-11-01", "2026-11-02")).toEqual({
      params: { starttime: "2026-11-01T00:00:00.000Z", endtime: "2026-11-03T00:00:00.000Z" },
      error: null,
    });
    expect(rangeParams("", "")).toEqual({ params: {}, error: null });
    expect(rangeParams("2026-11-05", "2026-11-01").error).toBe("From is after To");
    expect(rangeParams("2026-02-30", "").error).toBe("From is not a date");
  });
  it("says how long ago or ahead", () => {
    const now = new Date("2030-01-01T00:00:00Z");
    expect(relative("2030-01-04T00:00:00Z", now)).toBe("in 3 days");
    expect(relative("2029-12-31T23:55:00Z", now)).toBe("5 minutes ago");
    expect(relative(null, now)).toBe("Never");
  });
  it("sizes and digests", () => {
    expect(humanSize(512)).toBe("512 B");
    expect(humanSize(2150)).toBe("2.1 KiB");
    expect(humanSize(5 * 1024 ** 3)).toBe("5.0 GiB");
    expect(humanSize(null)).toBe("—");
    expect(shortDigest("sha256:0123456789abcdef0123")).toBe("sha256:0123456789ab");
  });
});
