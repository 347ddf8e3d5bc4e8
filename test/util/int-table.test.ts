import { describe, expect, it } from "vitest";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { IntTable } from "../../src/util/int-table.js";

describe("util › IntTable", () => {
  it("gets, sets, overwrites, deletes and counts like a Map; values come by ascending key", () => {
    const t = new IntTable<string>();
    expect(t.size).toBe(0);
    t.set(3, "c");
    t.set(1, "a");
    t.set(2, "b");
    t.set(2, "B");
    expect(t.size).toBe(3);
    expect(t.get(2)).toBe("B");
    expect(t.get(4)).toBeUndefined();
    expect(t.get(Number("x"))).toBeUndefined();
    expect(t.values()).toEqual(["a", "B", "c"]);
    expect(t.delete(1)).toBe(true);
    expect(t.delete(1)).toBe(false);
    expect(t.size).toBe(2);
    // A key past 2^32 (a token after years at full rate) still works.
    t.set(2 ** 40, "far");
    expect(t.get(2 ** 40)).toBe("far");
    t.clear();
    expect(t.size).toBe(0);
    expect(t.get(3)).toBeUndefined();
  });

  it("keys that come and go after a full GC die young: nothing dragged into the old generation", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as (o?: { type: "minor" | "major" }) => void;
    const oldUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!.space_used_size;
    // The publisher's pattern: a token in per send, out per answer, two in flight.
    const churn = (table: { set(k: number, v: object): unknown; delete(k: number): unknown }) => {
      let k = 1;
      const run = (n: number) => {
        for (let i = 0; i < n; i++, k++) {
          table.set(k, { k, payload: new Array(50).fill(k) });
          table.delete(k - 2);
        }
      };
      run(1000);
      gc(); // the table's current store is now in the old generation
      const before = oldUsed();
      for (let round = 0; round < 50; round++) {
        run(200);
        gc({ type: "minor" });
      }
      return oldUsed() - before;
    };
    // 10,000 entries of ~0.5 kB went through: a Map on this V8 moves ~5 MiB of them to the old
    // generation (its replaced stores link to their successors); the table must move almost none.
    const grewMap = churn(new Map<number, object>());
    const grewTable = churn(new IntTable<object>());
    expect(grewTable, `old generation grew ${grewTable} bytes (a Map: ${grewMap})`).toBeLessThan(512 * 1024);
  });
});
