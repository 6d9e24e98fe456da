import { describe, expect, it } from "vitest";

import { clampPage, filterParams, filterProblem, keepSelected, nextSort } from "./filters";

describe("filters", () => {
  it("sends nothing for an empty filter, the text for a substring, and regex=true for a regex", () => {
    expect(filterParams({ text: "", regex: true })).toEqual({});
    expect(filterParams({ text: "v1.", regex: false })).toEqual({ filter: "v1." });
    expect(filterParams({ text: "^v1\\.", regex: true })).toEqual({ filter: "^v1\\.", regex: "true" });
  });
  it("checks a regex before sending it; a substring is always fine", () => {
    expect(filterProblem({ text: "v1.(", regex: false })).toBeNull();
    expect(filterProblem({ text: "^v(1|2)$", regex: true })).toBeNull();
    expect(filterProblem({ text: "v1.(", regex: true })).toMatch(/^Invalid regular expression/);
    expect(filterProblem({ text: "a".repeat(257), regex: true })).toMatch(/longer than 256/);
  });
  it("sorting: the same column flips, another starts with its own order", () => {
    expect(nextSort({ by: "name", order: "asc" }, "name")).toEqual({ by: "name", order: "desc" });
    expect(nextSort({ by: "name", order: "desc" }, "name")).toEqual({ by: "name", order: "asc" });
    expect(nextSort({ by: "name", order: "asc" }, "size", "desc")).toEqual({ by: "size", order: "desc" });
  });
  it("clamps a page past the end to the last one", () => {
    expect(clampPage(3, 10, 12)).toBe(2);
    expect(clampPage(2, 10, 20)).toBe(2);
    expect(clampPage(5, 25, 0)).toBe(1);
    expect(clampPage(0, 25, 100)).toBe(1);
  });
  it("keeps only the selected names still shown", () => {
    expect(keepSelected(["a", "b", "c"], ["c", "a"])).toEqual(["a", "c"]);
  });
});
