import { describe, expect, it } from "vitest";

import { EMPTY_FORM, notificationBody, parseHeaders, parseTags, target } from "./notifications";

describe("notifications", () => {
  it("builds the API body of a webhook with filters, format, template and headers", () => {
    const { body, error } = notificationBody({
      ...EMPTY_FORM, title: " CI ", url: "https://ci.example.com/hook", tags: "v*, release-*", format: "cloudevents",
      template: '{"text": "${repository}"}', headers: "Authorization: Bearer x\nX-Team: core",
    });
    expect(error).toBeNull();
    expect(body).toEqual({
      event: "repo_push", method: "webhook", title: "CI",
      config: { url: "https://ci.example.com/hook", format: "cloudevents", template: { text: "${repository}" },
                headers: { Authorization: "Bearer x", "X-Team": "core" } },
      eventConfig: { tags: ["v*", "release-*"] },
    });
  });
  it("refuses what the API would refuse, with a reason", () => {
    expect(notificationBody({ ...EMPTY_FORM, url: "ftp://x" }).error).toMatch(/http/);
    expect(notificationBody({ ...EMPTY_FORM, method: "email", email: "not an address" }).error).toMatch(/e-mail/);
    expect(notificationBody({ ...EMPTY_FORM, url: "http://x", template: "{oops" }).error).toMatch(/JSON/);
    expect(notificationBody({ ...EMPTY_FORM, url: "http://x", headers: "no colon" }).error).toMatch(/header/);
    expect(notificationBody({ ...EMPTY_FORM, event: "repo_image_expiry", url: "http://x", days: "0" }).error).toMatch(/Days/);
    expect(notificationBody({ ...EMPTY_FORM, event: "nope", url: "http://x" }).error).toMatch(/event/);
  });
  it("expiry takes days; quota events take no tag filter; e-mail and Slack take no webhook options", () => {
    expect(notificationBody({ ...EMPTY_FORM, event: "repo_image_expiry", url: "http://x", days: "3" }).body?.eventConfig).toEqual({ days: 3 });
    expect(notificationBody({ ...EMPTY_FORM, event: "quota_warning", url: "http://x", tags: "v*" }).body?.eventConfig).toEqual({});
    expect(notificationBody({ ...EMPTY_FORM, method: "email", email: "ops@example.com", headers: "bad" }).body?.config)
      .toEqual({ email: "ops@example.com" });
    expect(notificationBody({ ...EMPTY_FORM, method: "slack", url: "https://hooks.slack.com/x", format: "cloudevents" }).body?.config)
      .toEqual({ url: "https://hooks.slack.com/x" });
  });
  it("parses headers and tags, and shows targets", () => {
    expect(parseHeaders("")).toEqual({});
    expect(parseHeaders("A: b: c")).toEqual({ A: "b: c" });
    expect(parseHeaders("Bad Header: x")).toBeNull();
    expect(parseTags(" a,b  c ")).toEqual(["a", "b", "c"]);
    expect(target("email", { email: "a@b" })).toBe("a@b");
    expect(target("webhook", { url: "https://x" })).toBe("https://x");
  });
});
