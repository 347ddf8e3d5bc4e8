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

  it("attributes a lost seq to the process that issued it, also one that started cleanly after a SIGTERM (leaf recovering at its kill: allowed; leaf up: not)", () => {
    const base = { exact: false, accepted: 0, published: 0, duplicates: 0, dropped: 0, rejected: 0, leftUnpublished: 0 };
    // Run 0 stores 1 and is killed (fault 0); run 1 declares 2..2 skipped, stores 3..4 and is stopped
    // by SIGTERM (fault 1); run 2 starts cleanly at 5, holds 5..6 and is killed (fault 2); run 3
    // declares 7..16 skipped and stores 17.
    const leaf = [msg("a", 1, 100), msg("a", 3, 1100), msg("a", 4, 1200), msg("a", 17, 3100)];
    const runs = [
      { ...base, startedAt: 0, endedAt: 1000, end: "kill" as const, fault: 0 },
      { ...base, startedAt: 1000, endedAt: 1500, end: "term" as const, fault: 1, skipped: { a: [2, 2] as [number, number] } },
      { ...base, startedAt: 1500, endedAt: 2000, end: "kill" as const, fault: 2 },
      { ...base, startedAt: 3000, end: "final" as const, skipped: { a: [7, 16] as [number, number] } },
    ];
    const faults = (leafReadyForMs: number) => [
      { kind: "daemon-kill" as const, at: 1000, leafUp: false },
      { kind: "daemon-term" as const, at: 1500, leafUp: true, leafReadyForMs: 60_000 },
      { kind: "daemon-kill" as const, at: 2000, leafUp: true, leafReadyForMs },
    ];
    const recovering = analyse(obs(leaf, { runs, faults: faults(500) }));
    expect(recovering.losses.filter((l) => l.seq === 5 || l.seq === 6)).toEqual([
      { sensor: "a", seq: 5, cause: "daemon-killed-leaf-recovering", fault: 2 },
      { sensor: "a", seq: 6, cause: "daemon-killed-leaf-recovering", fault: 2 },
    ]);
    expect(recovering.broken).toEqual([]);
    const up = analyse(obs(leaf, { runs, faults: faults(5000) }));
    expect(up.lossByCause["daemon-killed-leaf-up"]).toBe(2);
    expect(up.broken.join()).toMatch(/not explained/);
  });

  it("finds readings a daemon accepted that left no seq gap and no count", () => {
    const leaf = [msg("a", 1, 100), msg("a", 2, 200)];
    const run = { startedAt: 0, endedAt: 300, end: "term" as const, exact: true, accepted: 5, published: 2, duplicates: 0, dropped: 1, rejected: 0, leftUnpublished: 1 };
    const v = analyse(obs(leaf, { runs: [run] }));
    expect(v.runs[0]).toMatchObject({ accepted: 5, stored: 2, missing: 3, counted: 2, invisible: 1 });
    expect(v.broken.join()).toMatch(/neither a seq gap nor a count/);
  });
});
