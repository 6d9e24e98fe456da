import { describe, expect, it } from "vitest";

import { checkPercent, parseLimit, usageBar } from "./quota";

describe("quota", () => {
  it("reads Quay's limit strings", () => {
    expect(parseLimit("10 GiB")).toBe(10 * 1024 ** 3);
    expect(parseLimit("10GiB")).toBe(10 * 1024 ** 3);
    expect(parseLimit("500 MB")).toBe(500 * 1000 ** 2);
    expect(parseLimit("1G")).toBe(1000 ** 3);
    expect(parseLimit("3 Mi")).toBe(3 * 1024 ** 2);
    expect(parseLimit("2048")).toBe(2048);
    expect(parseLimit("0")).toBeNull();
    expect(parseLimit("lots")).toBeNull();
    expect(parseLimit("10 XB")).toBeNull();
    expect(parseLimit("-1 GiB")).toBeNull();
  });
  it("colours the usage bar by the limits", () => {
    const report = { quota_bytes: 50, configured_quota: 100, reject_bytes: 100, percent_consumed: 50, default_config: false };
    expect(usageBar(report, 80)).toEqual({ percent: 50, variant: "success" });
    expect(usageBar({ ...report, quota_bytes: 85 }, 80)).toEqual({ percent: 85, variant: "warning" });
    expect(usageBar({ ...report, quota_bytes: 100 }, 80)).toEqual({ percent: 100, variant: "danger" });
    expect(usageBar({ ...report, quota_bytes: 150, reject_bytes: null }, null).percent).toBe(100);
    expect(usageBar({ ...report, configured_quota: null }, null)).toEqual({ percent: 0, variant: "success" });
  });
  it("percent thresholds are whole numbers from 1 to 100", () => {
    expect(checkPercent("80")).toBe(80);
    expect(checkPercent("100")).toBe(100);
    expect(checkPercent("0")).toBeNull();
    expect(checkPercent("101")).toBeNull();
    expect(checkPercent("8.5")).toBeNull();
  });
});
