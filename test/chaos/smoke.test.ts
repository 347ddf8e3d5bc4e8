/**
 * CI's short chaos round (issue 18): one seeded, ~60 s run of `npm run chaos` — hub, leaf and
 * daemon kill -9, SIGTERM, link cuts, leaf SIGSTOP against the real processes — and every
 * invariant must hold: 0 duplicated, 0 collisions, hub = leaf, 0 silent drops, nothing lost
 * but what a daemon killed while its leaf was down held. Replay: npm run chaos -- --seed 20261202 --duration 60s
 */
import { describe, expect, it } from "vitest";
import { runChaos, summary } from "../../bench/chaos.js";

describe("chaos › smoke round", () => {
  it("a seeded 60 s round of mixed faults breaks no invariant", async () => {
    const args = { seed: 20261202, faults: Infinity, durationMs: 60_000, mix: "all", sensors: 4, intervalMs: 50, json: false, keep: false };
    const r = await runChaos(args, () => undefined);
    const text = summary(args, r);
    expect(r.faults.length, text).toBeGreaterThan(10);
    expect(r.hubCaughtUp, text).toBe(true);
    expect(r.verdict.broken, text).toEqual([]);
  }, 300_000);
});
