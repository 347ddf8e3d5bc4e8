/**
 * Scheduling on a monotonic clock and `uncertain` until the clock is synchronised (issue 18,
 * DESIGN A2). Fake timers and a fake clock seam: no sleeps. A Pi without RTC steps its wall
 * clock when NTP first answers — backwards or forwards by hours — and polling must go on.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ClockSync, systemClockProbe } from "../../src/daemon/clock-sync.js";
import { ReadingFilter } from "../../src/daemon/sensor-runner.js";
import { ticker } from "../../src/drivers/util.js";
import type { Reading } from "../../src/drivers/types.js";

const HOUR = 3_600_000;

afterEach(() => {
  vi.useRealTimers();
});

describe("clock › monotonic scheduling", () => {
  it("ticker keeps its schedule when the wall clock steps back an hour", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date", "performance"], now: 1_764_460_800_000 });
    const abort = new AbortController();
    let ticks = 0;
    const done = (async () => {
      for await (const _ of ticker(1000, abort.signal)) ticks++;
    })();
    await vi.advanceTimersByTimeAsync(2000);
    expect(ticks).toBe(3); // at 0, 1 s, 2 s
    vi.setSystemTime(Date.now() - HOUR);
    await vi.advanceTimersByTimeAsync(3000);
    expect(ticks).toBe(6);
    vi.setSystemTime(Date.now() + 5 * HOUR);
    await vi.advanceTimersByTimeAsync(3000);
    expect(ticks).toBe(9); // a step forward does not bunch ticks either
    abort.abort();
    await vi.advanceTimersByTimeAsync(0);
    await done;
  });

  it("tickers of one interval started at different times tick together on its grid (one wake-up for all), a slow consumer skips missed ticks", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const abort = new AbortController();
    const at: Record<string, number[]> = { a: [], b: [], slow: [] };
    const run = async (name: string, work = 0) => {
      for await (const t of ticker(1000, abort.signal)) {
        at[name]!.push(Math.round(performance.now()));
        if (work) await new Promise((r) => setTimeout(r, work));
        void t;
      }
    };
    await vi.advanceTimersByTimeAsync(130);
    const a = run("a");
    await vi.advanceTimersByTimeAsync(600);
    const b = run("b");
    const slow = run("slow", 1500);
    await vi.advanceTimersByTimeAsync(3500);
    // Each reads at once when started, then on every multiple of 1 s.
    expect(at.a).toEqual([130, 1000, 2000, 3000, 4000]);
    expect(at.b).toEqual([730, 1000, 2000, 3000, 4000]);
    // Busy 1.5 s after each tick: the ticks that fell in that time are skipped, not bunched.
    expect(at.slow).toEqual([730, 3000]);
    abort.abort();
    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all([a, b, slow]);
  });

  it("ticker ends on abort while waiting and on a break, and leaves no timer or abort listener behind", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const abort = new AbortController();
    const seen: number[] = [];
    const waiting = (async () => {
      for await (const t of ticker(1000, abort.signal)) seen.push(Math.round(t));
    })();
    await vi.advanceTimersByTimeAsync(1500);
    expect(seen).toEqual([0, 1000]);
    expect(vi.getTimerCount()).toBe(1); // waiting for 2000
    abort.abort();
    await waiting;
    expect(vi.getTimerCount()).toBe(0);

    const other = new AbortController();
    const add = vi.spyOn(other.signal, "addEventListener");
    const remove = vi.spyOn(other.signal, "removeEventListener");
    let n = 0;
    const broke = (async () => {
      for await (const _ of ticker(1000, other.signal)) if (++n === 2) break;
    })();
    await vi.advanceTimersByTimeAsync(1000);
    await broke;
    expect(n).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
    expect(add).toHaveBeenCalledTimes(1); // one listener for the whole schedule
    expect(remove).toHaveBeenCalledTimes(1);
    // An aborted signal: nothing at all.
    for await (const _ of ticker(1000, AbortSignal.abort())) n++;
    expect(n).toBe(2);
  });

  it("the deadband heartbeat is due after `heartbeat` on the monotonic clock, whatever the readings' wall-clock ts say", () => {
    let mono = 0;
    const f = new ReadingFilter({ deadband: 1, heartbeat: 60_000, range: undefined }, { clock: () => mono });
    const r = (ts: number, value = 20): Reading => ({ sensor: "t", type: "temperature", ts, value, quality: "good" });
    const T = 1_764_460_800_000;
    expect(f.apply(r(T))).toBeDefined();
    mono += 30_000;
    expect(f.apply(r(T + 30_000))).toBeUndefined(); // unmoved, heartbeat not due
    // NTP steps the wall clock back an hour; 61 s after the last publish the heartbeat is due.
    mono += 31_000;
    expect(f.apply(r(T + 61_000 - HOUR))).toBeDefined();
    mono += 1_000;
    expect(f.apply(r(T + 62_000 - HOUR))).toBeUndefined();
  });
});

describe("clock › uncertain until synchronised", () => {
  const good: Reading = { sensor: "t", type: "temperature", ts: 1, value: 20, quality: "good" };

  it("marks good readings uncertain while the clock is not synchronised; bad stays bad", () => {
    let synced = false;
    const f = new ReadingFilter({ deadband: undefined, heartbeat: 60_000, range: undefined }, { clockSynced: () => synced });
    expect(f.apply(good)?.quality).toBe("uncertain");
    expect(f.apply({ ...good, quality: "bad" })?.quality).toBe("bad");
    synced = true;
    expect(f.apply(good)?.quality).toBe("good");
  });

  it("ClockSync probes until the probe says synchronised, then stops probing", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });
    const answers = [false, false, true];
    let probes = 0;
    const c = ClockSync.follow(async () => answers[Math.min(probes++, answers.length - 1)]!, { everyMs: 10_000 });
    await c.ready;
    expect(c.synced).toBe(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(c.synced).toBe(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(c.synced).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(probes).toBe(3);
    c.close();
  });

  it("a probe that cannot tell (no systemd, e.g. a container) counts as synchronised", async () => {
    const c = ClockSync.follow(async () => undefined);
    await c.ready;
    expect(c.synced).toBe(true);
  });

  it("systemClockProbe: the timesyncd flag file, else timedatectl's NTPSynchronized, else cannot tell", async () => {
    const dir = await mkdtemp(join(tmpdir(), "egw-clock-"));
    try {
      const flag = join(dir, "synchronized");
      const fakeCtl = join(dir, "timedatectl");
      await writeFile(fakeCtl, '#!/bin/sh\n[ "$3" = NTPSynchronized ] && [ "$4" = --value ] && echo "$ANSWER"\n');
      await chmod(fakeCtl, 0o755);
      process.env.ANSWER = "no";
      expect(await systemClockProbe({ file: flag, timedatectl: fakeCtl })()).toBe(false);
      process.env.ANSWER = "yes";
      expect(await systemClockProbe({ file: flag, timedatectl: fakeCtl })()).toBe(true);
      expect(await systemClockProbe({ file: flag, timedatectl: join(dir, "missing") })()).toBeUndefined();
      await writeFile(flag, "");
      expect(await systemClockProbe({ file: flag, timedatectl: join(dir, "missing") })()).toBe(true);
    } finally {
      delete process.env.ANSWER;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
