import { describe, expect, it } from "vitest";

import { offeredSections, organizationSettingsRoute, settingsClosedReason, settingsSection } from "./orgSettings";

describe("organisation settings sections", () => {
  it("offer Quota only with quota management", () => {
    expect(offeredSections(true)).toEqual(["general", "notifications", "quota"]);
    expect(offeredSections(false)).toEqual(["general", "notifications"]);
  });

  it("fall back to General for a missing, unknown or closed section", () => {
    expect(settingsSection("notifications", offeredSections(true))).toBe("notifications");
    expect(settingsSection("quota", offeredSections(true))).toBe("quota");
    expect(settingsSection("quota", offeredSections(false))).toBe("general");
    expect(settingsSection("billing", offeredSections(true))).toBe("general");
    expect(settingsSection(null, offeredSections(true))).toBe("general");
  });

  it("have routes on the organisation page's Settings tab", () => {
    expect(organizationSettingsRoute("acme")).toBe("/organization/acme?tab=settings");
    expect(organizationSettingsRoute("acme", "general")).toBe("/organization/acme?tab=settings");
    expect(organizationSettingsRoute("acme", "quota")).toBe("/organization/acme?tab=settings&section=quota");
    expect(organizationSettingsRoute("acme", "<script>")).toBe("/organization/acme?tab=settings");
  });

  it("are closed to non-administrators and in read-only mode, with the reason", () => {
    expect(settingsClosedReason("acme", true, false)).toBeNull();
    expect(settingsClosedReason("acme", false, false)).toBe("Only administrators of acme can change its settings");
    expect(settingsClosedReason("acme", true, true)).toBe("The registry is read-only");
  });
});
