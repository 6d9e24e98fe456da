import { describe, expect, it } from "vitest";

import { MAX_TOASTS, Toast, toastTop, withToast } from "./toasts";

const toast = (id: number): Toast => ({ id, variant: "success", title: `t${id}` });

describe("toasts", () => {
  it("keep the newest, newest last", () => {
    expect(MAX_TOASTS).toBe(1);
    expect(withToast(withToast([], toast(1)), toast(2)).map((t) => t.id)).toEqual([2]);
    let list: Toast[] = [];
    for (let id = 1; id <= 4; id++) list = withToast(list, toast(id), 3);
    expect(list.map((t) => t.id)).toEqual([2, 3, 4]);
  });
  it("sit under the masthead, or where PatternFly puts them when there is none", () => {
    expect(toastTop(72.4)).toBe(88);
    expect(toastTop(72.4, 8)).toBe(80);
    expect(toastTop(-5)).toBe(16);
    expect(toastTop(null)).toBeNull();
  });
});
