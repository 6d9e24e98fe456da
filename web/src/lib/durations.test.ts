import { describe, expect, it } from "vitest";

import { durationLabel } from "./durations";

describe("durations", () => {
  it("labels the time-machine options", () => {
    expect([0, 604800, 2592000, 31536000].map(durationLabel)).toEqual(["Never", "1 week", "1 month", "1 year"]);
    expect(durationLabel(14 * 86400)).toBe("2 weeks");
    expect(durationLabel(28 * 86400)).toBe("4 weeks");
    expect(durationLabel(86400)).toBe("1 day");
    expect(durationLabel(90)).toBe("90 seconds");
  });
});
