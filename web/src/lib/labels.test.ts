import { describe, expect, it } from "vitest";

import { LABEL_FORMAT_ERROR, labelChanges, parseLabel } from "./labels";

describe("parseLabel", () => {
  it("splits at the first =, keeping = in the value", () => {
    expect(parseLabel("env=prod")).toEqual({ ok: true, key: "env", value: "prod" });
    expect(parseLabel(" url = a=b ")).toEqual({ ok: true, key: "url", value: " a=b " });
    expect(parseLabel("empty=")).toEqual({ ok: true, key: "empty", value: "" });
  });
  it("refuses text without = or without a key, with the seed's message", () => {
    expect(parseLabel("novalue")).toEqual({ ok: false, error: LABEL_FORMAT_ERROR });
    expect(parseLabel("=value")).toEqual({ ok: false, error: LABEL_FORMAT_ERROR });
    expect(LABEL_FORMAT_ERROR).toBe("Invalid label format, must be key value separated by =");
  });
  it("refuses keys the registry refuses", () => {
    const parsed = parseLabel("bad key=1");
    expect(parsed.ok).toBe(false);
  });
});

describe("labelChanges", () => {
  const existing = [
    { id: "1", key: "env", value: "prod", source_type: "api" },
    { id: "2", key: "team", value: "core", source_type: "api" },
    { id: "3", key: "from.image", value: "yes", source_type: "manifest" },
  ];
  it("adds the new, removes the dropped, leaves the unchanged alone", () => {
    const changes = labelChanges(existing, ["env=prod", "owner=alice", ""]);
    expect(changes.add).toEqual([{ key: "owner", value: "alice" }]);
    expect(changes.remove.map((l) => l.id)).toEqual(["2"]);
    expect(changes.errors).toEqual([]);
  });
  it("never removes labels from the image and reports bad lines once", () => {
    const changes = labelChanges(existing, ["oops", "oops"]);
    expect(changes.remove.map((l) => l.id)).toEqual(["1", "2"]);
    expect(changes.errors).toEqual([LABEL_FORMAT_ERROR]);
  });
  it("a changed value is a delete and an add", () => {
    const changes = labelChanges(existing, ["env=dev", "team=core"]);
    expect(changes.add).toEqual([{ key: "env", value: "dev" }]);
    expect(changes.remove.map((l) => l.id)).toEqual(["1"]);
  });
});
