import { describe, expect, it } from "vitest";
import { selectPrunable } from "../../../lib/bake/image.ts";

const img = (n: number) => ({
  imageId: `ami-${String(n).padStart(17, "0")}`,
  creationDate: `2026-01-${String(n).padStart(2, "0")}T00:00:00.000Z`,
});
const ids = (ns: number[]) => ns.map((n) => img(n).imageId);
const images = [3, 1, 5, 2, 4, 6].map(img);

describe("selectPrunable", () => {
  it.each([
    ["keeps the newest N", 3, [], [3, 2, 1]],
    ["keeps everything within retention", 10, [], []],
    ["never removes the live (in use) image", 2, [[1, "used by launch template lt-1 version 3"]], [4, 3, 2]],
    ["never removes this execution's image", 1, [[2, "this deployment's image"]], [5, 4, 3, 1]],
    ["protected images inside retention still count", 2, [[6, "live"]], [4, 3, 2, 1]],
  ] as const)("%s", (_w, retain, protect, removed) => {
    const sel = selectPrunable(images, retain, new Map(protect.map(([n, why]) => [img(n).imageId, why])));
    expect(sel.remove).toEqual(ids([...removed]));
    for (const [n, why] of protect) expect(sel.keep).toContainEqual({ imageId: img(n).imageId, why });
    expect(sel.keep.length + sel.remove.length).toBe(images.length);
  });

  it("orders by creation date, not by listing order", () => {
    expect(selectPrunable([img(1), img(9), img(5)], 1, new Map()).keep).toEqual([
      { imageId: img(9).imageId, why: "among the newest 1" },
    ]);
  });
});
