/**
 * CI's short chaos round (issue 18): one seeded, ~60 s run of `npm run chaos` — hub, leaf and
 * daemon kill -9, SIGTERM, link cuts, leaf SIGSTOP against the real processes — and every
 * invariant must hold: 0 duplicated, 0 collisions, hub = leaf, 0 silent drops, nothing lost
 * but what a daemon killed while its leaf was down held (and seqs a restarted daemon declared
 * skipped). Replay: npm run chaos -- --seed 20261202 --duration 60s
 *
 * Every loss must leave a trace: a reading takes its seq when accepted, so what a killed daemon
 * still held is a visible gap; a reading without a seq and without a count fails the round.
 */
import { describe, expect, it } from "vitest";
import { runChaos, summary } from "../../bench/chaos.js";

describe("chaos › smoke round", () => {
  it("a seeded 60 s round of mixed faults: no duplicate, collision, silent drop or loss but a killed daemon's; hub = leaf", async () => {
    const args = { seed: 20261202, faults: Infinity, durationMs: 60_000, mix: "all", sensors: 4, intervalMs: 50, json: false, keep: false };
    const r = await runChaos(args, () => undefined);
    const text = summary(args, r);
    expect(r.faults.length, text).toBeGreaterThan(10);
    expect(r.hubCaughtUp, text).toBe(true);
    expect(r.verdict.broken, text).toEqual([]);
  }, 300_000);
});
