import { describe, expect, it } from "vitest";

import { compareValues, listQuery, localPage, readList, writeList } from "./listing";

const spec = { sorts: ["name", "created", "size"] as const, sort: "name" as const };

describe("listing", () => {
  it("reads a list's state from prefixed URL parameters, with defaults for anything unknown", () => {
    const params = new URLSearchParams("r_page=3&r_perPage=50&r_sort=size&r_order=desc&r_filter=bot&r_regex=true&page=9");
    expect(readList(params, spec, "r_")).toEqual({ page: 3, perPage: 50, sort: "size", order: "desc", filter: { text: "bot", regex: true } });
    expect(readList(new URLSearchParams("sort=colour&perPage=7&page=-2"), spec)).toEqual({
      page: 1, perPage: 25, sort: "name", order: "asc", filter: { text: "", regex: false } });
  });
  it("writes only what differs from the defaults", () => {
    const state = readList(new URLSearchParams("page=2&sort=created"), spec);
    expect(writeList(state, spec)).toEqual({ page: "2", perPage: null, sort: "created", order: null, filter: null, regex: null });
    expect(listQuery(state)).toEqual({ sort: "created", order: "asc", page: 2, limit: 25 });
  });
  it("sorts dates by time and sizes by number, never as text", () => {
    const dates = [new Date("2026-02-02"), new Date("2026-01-10"), new Date("2025-12-25")];
    expect([...dates].sort(compareValues).map((d) => d.toISOString().slice(0, 10))).toEqual(["2025-12-25", "2026-01-10", "2026-02-02"]);
    expect([100, 9, 10].sort(compareValues)).toEqual([9, 10, 100]);
    expect(["robot10", "robot9"].sort(compareValues)).toEqual(["robot9", "robot10"]);
    expect([null, 3, undefined, 1].sort(compareValues)).toEqual([1, 3, null, undefined]);
  });
  it("filters, sorts (empty values last both ways) and pages a whole list", () => {
    const rows = [
      { name: "b", when: new Date("2026-02-02") }, { name: "a", when: new Date("2026-01-10") },
      { name: "c", when: null }, { name: "d", when: new Date("2025-12-25") },
    ];
    const value = (row: (typeof rows)[number]) => row.when;
    const state = { page: 1, perPage: 2, sort: "created" as const, order: "desc" as const, filter: { text: "", regex: false } };
    expect(localPage(rows, state, (r) => r.name, value)).toEqual({ rows: [rows[0], rows[1]], total: 4 });
    expect(localPage(rows, { ...state, page: 2 }, (r) => r.name, value).rows.map((r) => r.name)).toEqual(["d", "c"]);
    expect(localPage(rows, { ...state, order: "asc", perPage: 10 }, (r) => r.name, value).rows.map((r) => r.name)).toEqual(["d", "a", "b", "c"]);
    expect(localPage(rows, { ...state, filter: { text: "^[ab]$", regex: true } }, (r) => r.name, value).total).toBe(2);
    expect(localPage(rows, { ...state, filter: { text: "(", regex: true } }, (r) => r.name, value).total).toBe(0);
  });
});
