/**
 * The chaos suite's verdict (bench/chaos/analyse.ts) on hand-made observations: each invariant
 * it checks is broken once here, so a run that passes cannot pass because the check is blind.
 */
import { describe, expect, it } from "vitest";
import { analyse, type Observation, type StoredMsg } from "../../bench/chaos/analyse.js";

const D = "pi";
const msg = (sensor: string, seq: number, ts: number, value = seq): StoredMsg => {
  const body = JSON.stringify({ device: D, sensor, seq, ts, value });
  return { msgId: `${D}.${sensor}.${seq}`, sensor, seq, ts, body };
};
const obs = (leaf: StoredMsg[], extra: Partial<Observation> = {}): Observation => ({
  device: D,
  leaf,
  hub: [...leaf],
  attempts: new Map(leaf.map((m) => [m.msgId, new Set([m.body])])),
  runs: [],
  faults: [],
  ...extra,
});

describe("chaos › verdict", () => {
  it("passes a clean, contiguous, replicated stream", () => {
    const v = analyse(obs([msg("a", 1, 10), msg("a", 2, 20), msg("b", 1, 15)]));
    expect(v.broken).toEqual([]);
    expect(v.totals).toMatchObject({ leaf: 3, hub: 3, lost: 0 });
  });

  it("counts a duplicated msg id, a hub that differs from the leaf, and a lost seq not explained by a kill", () => {
    const leaf = [msg("a", 1, 10), msg("a", 1, 10), msg("a", 3, 30)];
    const v = analyse(obs(leaf, { hub: [msg("a", 1, 10)] }));
    expect(v.totals.duplicated).toBe(1);
    expect(v.hubEqualsLeaf).toBe(false);
    expect(v.losses).toEqual([{ sensor: "a", seq: 2, cause: "unexplained" }]);
    expect(v.broken).toHaveLength(3);
  });

  it("sees a collision and its silent drop: the leaf saw two bodies for one msg id and stored one", () => {
    const stored = msg("a", 1, 10, 21.5);
    const other = msg("a", 1, 99, 19.0);
    const v = analyse(obs([stored], { attempts: new Map([[stored.msgId, new Set([stored.body, other.body])]]) }));
    expect(v.totals.collisions).toBe(1);
    expect(v.totals.silentDrops).toBe(1);
    expect(v.broken.join()).toMatch(/collisions/);
  });

  it("allows only what a daemon killed while its leaf was down held; a kill with the leaf up is a violation", () => {
    const leaf = [msg("a", 1, 1000), msg("a", 3, 5000), msg("b", 1, 1000), msg("b", 3, 9000)];
    const faults = [
      { kind: "daemon-kill" as const, at: 1500, leafUp: false },
      { kind: "daemon-kill" as const, at: 6000, leafUp: true },
    ];
    const v = analyse(obs(leaf, { faults }));
    expect(v.losses).toEqual([
      { sensor: "a", seq: 2, cause: "daemon-killed-leaf-down", fault: 0 },
      { sensor: "b", seq: 2, cause: "daemon-killed-leaf-down", fault: 0 },
    ]);
    expect(v.broken).toEqual([]);
    const v2 = analyse(obs([msg("a", 1, 1000), msg("a", 3, 9000)], { faults: [{ kind: "daemon-term", at: 1500, leafUp: true }] }));
    expect(v2.lossByCause["daemon-killed-leaf-up"]).toBe(1);
    expect(v2.broken).toHaveLength(1);
  });

  it("finds readings a daemon accepted that left no seq gap and no count", () => {
    const leaf = [msg("a", 1, 100), msg("a", 2, 200)];
    const run = { startedAt: 0, endedAt: 300, end: "term" as const, exact: true, accepted: 5, published: 2, duplicates: 0, dropped: 1, rejected: 0, leftUnpublished: 1 };
    const v = analyse(obs(leaf, { runs: [run] }));
    expect(v.runs[0]).toMatchObject({ accepted: 5, stored: 2, missing: 3, counted: 2, invisible: 1 });
    expect(v.broken.join()).toMatch(/neither a seq gap nor a count/);
  });
});
