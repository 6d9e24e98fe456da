import { describe, expect, it } from "vitest";

import { parseTagRoute, safeUrl, tagRoute } from "./urls";
import { repositoryNameProblem } from "./names";
import { isDark } from "./theme";
import { describeChange } from "./history";

describe("urls", () => {
  it("follows only http(s) and same-site paths", () => {
    expect(safeUrl("https://example.com/a")).toBe("https://example.com/a");
    expect(safeUrl("/favicon.svg")).toBe("/favicon.svg");
    expect(safeUrl("javascript:alert(1)")).toBeUndefined();
    expect(safeUrl(" JavaScript:alert(1)")).toBeUndefined();
    expect(safeUrl("data:text/html,<script>")).toBeUndefined();
    expect(safeUrl("//evil.example/x")).toBeUndefined();
    expect(safeUrl("")).toBeUndefined();
  });
  it("a tag route's last part is the tag; repository names may hold slashes and be called tag", () => {
    expect(parseTagRoute("acme/app/v1.0")).toEqual({ repository: "acme/app", tag: "v1.0" });
    expect(parseTagRoute("acme/team/app/latest")).toEqual({ repository: "acme/team/app", tag: "latest" });
    expect(parseTagRoute("acme/tag/tag")).toEqual({ repository: "acme/tag", tag: "tag" });
    expect(parseTagRoute("acme/app")).toBeNull();
    expect(parseTagRoute(tagRoute("acme/app", "v1").slice("/tag/".length))).toEqual({ repository: "acme/app", tag: "v1" });
  });
});

describe("names, theme and history", () => {
  it("checks repository names like the registry", () => {
    expect(repositoryNameProblem("build")).toBeNull();
    expect(repositoryNameProblem("team/app-1.0")).toBeNull();
    expect(repositoryNameProblem("Bad")).toMatch(/lowercase/);
    expect(repositoryNameProblem("a..b")).toMatch(/lowercase/);
    expect(repositoryNameProblem("")).toBe("Enter a name");
  });
  it("device-based follows the system, the others do not", () => {
    expect(isDark("device", true)).toBe(true);
    expect(isDark("device", false)).toBe(false);
    expect(isDark("dark", false)).toBe(true);
    expect(isDark("light", true)).toBe(false);
  });
  it("describes history rows", () => {
    expect(describeChange({ reversion: true, is_live: true, end_ts: null, expiration: null })).toBe("Restored");
    expect(describeChange({ reversion: false, is_live: true, end_ts: null, expiration: null })).toBe("Pushed or moved");
    expect(describeChange({ reversion: false, is_live: false, end_ts: 100, expiration: null })).toBe("Deleted or moved away");
    expect(describeChange({ reversion: false, is_live: false, end_ts: 100, expiration: "1970-01-01T00:01:40Z" }, new Date(200_000))).toBe("Expired");
  });
});

describe("search targets", () => {
  it("leads to the repository, the tag, or a digest's first tag", async () => {
    const { searchTarget, organizationRoute } = await import("./urls");
    expect(searchTarget({ kind: "repository", repository: "acme/app" })).toBe("/repository/acme/app");
    expect(searchTarget({ kind: "tag", repository: "acme/app", tag: "v1+b" })).toBe("/tag/acme/app/v1%2Bb");
    expect(searchTarget({ kind: "digest", repository: "acme/app", tags: ["a", "b"] })).toBe("/tag/acme/app/a");
    expect(searchTarget({ kind: "digest", repository: "acme/app", tags: [] })).toBe("/repository/acme/app?tab=tags");
    expect(organizationRoute("acme", "robots")).toBe("/organization/acme?tab=robots");
  });
});

describe("namespace names", () => {
  it("follow the API's grammar", async () => {
    const { namespaceNameProblem } = await import("./names");
    expect(namespaceNameProblem("build-team")).toBeNull();
    for (const bad of ["", "a", "Acme", "acme-", "-acme", "ac--me", "a".repeat(256)]) expect(namespaceNameProblem(bad), bad).not.toBeNull();
  });
});
