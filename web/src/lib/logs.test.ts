import { describe, expect, it } from "vitest";

import { dailyCounts, describeMetadata, exportTarget, kindLabel } from "./logs";

describe("usage logs", () => {
  it("counts per day over the whole range, empty days at 0", () => {
    const days = dailyCounts([
      { kind: "push_repo", count: 3, datetime: "2026-03-01" },
      { kind: "pull_repo", count: 2, datetime: "2026-03-01" },
      { kind: "pull_repo", count: 5, datetime: "2026-03-03" },
      { kind: "pull_repo", count: 9, datetime: "2026-04-01" }, // outside the range
    ], "2026-02-28", "2026-03-03");
    expect(days.map((d) => [d.date, d.count])).toEqual([["2026-02-28", 0], ["2026-03-01", 5], ["2026-03-02", 0], ["2026-03-03", 5]]);
    expect(days[1].kinds).toEqual({ push_repo: 3, pull_repo: 2 });
    expect(dailyCounts([], "2026-03-03", "2026-03-01")).toEqual([]);
  });
  it("names kinds and details", () => {
    expect(kindLabel("create_robot")).toBe("Create robot");
    expect(kindLabel("some_new_kind")).toBe("Some new kind");
    expect(describeMetadata({ robot: "acme+ci", teams: ["owners"], empty: null })).toBe('robot=acme+ci, teams=["owners"]');
  });
  it("sends an export to an http(s) URL or an e-mail address, nothing else", () => {
    expect(exportTarget(" https://hooks.example.com/logs ")).toEqual({ ok: true, body: { callback_url: "https://hooks.example.com/logs" } });
    expect(exportTarget("ops@example.com")).toEqual({ ok: true, body: { callback_email: "ops@example.com" } });
    for (const bad of ["ftp://example.com/x", "javascript:alert(1)", "ops@", "not an address", "http://", ""]) {
      expect(exportTarget(bad).ok, bad).toBe(false);
    }
  });
});
