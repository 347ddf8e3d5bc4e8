/**
 * `npm run chaos`: fault injection against real processes (issue 18). A hub and a leaf
 * nats-server, the TCP proxy on the leaf link, and the real daemon (`bin/edge-gateway.js run`,
 * simulated sensors) take random faults — hub / leaf / daemon kill -9 (each restarted on the same
 * store), daemon SIGTERM, link cuts, leaf SIGSTOP/SIGCONT — then both streams are read and every
 * sensor's seqs checked (bench/chaos/analyse.ts). Exit 0 when every invariant holds, 1 when one
 * is broken, 2 when the harness itself failed.
 *
 * The seed fixes the fault schedule (kinds, hold times, gaps); the processes' own timing is not
 * replayable, so a replay reproduces the schedule, not every interleaving.
 *
 *   --seed N            replay a schedule (default: random, printed)
 *   --faults N          stop after N faults (default 50 unless --duration is given)
 *   --duration D        stop injecting after D (e.g. 90s, 5m)
 *   --mix all|leaf-daemon   all six kinds, or only leaf kill -9 + daemon kill -9
 *   --sensors N --interval MS   simulated sensors (default 4 every 50 ms)
 *   --json              the verdict as JSON on stdout (progress goes to stderr)
 *   --keep              keep the working dir (stores, daemon.log)
 */
import { parseArgs } from "node:util";
import { parseDuration } from "../src/config/units.js";
import { analyse, LEAF_RECOVERY_MS, type FaultEvent, type FaultKind, type Verdict } from "./chaos/analyse.js";
import { World } from "./chaos/world.js";

const MIXES: Record<string, FaultKind[]> = {
  all: ["hub-kill", "leaf-kill", "daemon-kill", "daemon-term", "link-cut", "leaf-stop"],
  "leaf-daemon": ["leaf-kill", "daemon-kill"],
};
const TARGET: Record<FaultKind, "hub" | "leaf" | "daemon" | "link"> = {
  "hub-kill": "hub",
  "leaf-kill": "leaf",
  "leaf-stop": "leaf",
  "daemon-kill": "daemon",
  "daemon-term": "daemon",
  "link-cut": "link",
};

/** mulberry32: a small seeded PRNG, enough for a fault schedule. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Args {
  seed: number;
  faults: number;
  durationMs: number;
  mix: string;
  sensors: number;
  intervalMs: number;
  json: boolean;
  keep: boolean;
}

function parse(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: "string" },
      faults: { type: "string" },
      duration: { type: "string" },
      mix: { type: "string", default: "all" },
      sensors: { type: "string", default: "4" },
      interval: { type: "string", default: "50" },
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
    },
  });
  const int = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  const durationMs = values.duration === undefined ? Infinity : parseDuration(values.duration);
  if (durationMs === undefined) throw new Error(`--duration must be like 90s or 5m, got ${JSON.stringify(values.duration)}`);
  if (!MIXES[values.mix!]) throw new Error(`--mix must be one of ${Object.keys(MIXES).join(", ")}`);
  return {
    seed: int("seed", values.seed, Math.floor(Math.random() * 2 ** 31)),
    faults: int("faults", values.faults, values.duration === undefined ? 50 : Infinity),
    durationMs,
    mix: values.mix!,
    sensors: Math.max(1, int("sensors", values.sensors, 4)),
    intervalMs: Math.max(10, int("interval", values.interval, 50)),
    json: values.json!,
    keep: values.keep!,
  };
}

let current: World | undefined;

/** Runs one round; resolves with the verdict and the fault timeline. */
export async function runChaos(a: Args, log: (s: string) => void): Promise<{ verdict: Verdict; faults: FaultEvent[]; elapsedMs: number; hubCaughtUp: boolean; termTimeouts: number }> {
  const random = rng(a.seed);
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo));
  const kinds = MIXES[a.mix]!;
  const world = await World.start({ sensors: a.sensors, intervalMs: a.intervalMs, keep: a.keep, log });
  current = world;
  const faults: FaultEvent[] = [];
  const busy = new Map<string, Promise<void>>();
  let termTimeouts = 0;
  const t0 = Date.now();
  try {
    log(`chaos: world up in ${world.dir}; warming up`);
    await sleep(2000);
    while (faults.length < a.faults && Date.now() - t0 < a.durationMs) {
      // Draw everything for this fault first, so the schedule depends on the seed only.
      const kind = kinds[Math.floor(random() * kinds.length)]!;
      const holdMs = between(100, 3000);
      const gapMs = between(150, 1500);
      const target = TARGET[kind];
      await busy.get(target);
      const ev: FaultEvent = { kind, at: Date.now() };
      faults.push(ev);
      const job = inject(kind, ev, holdMs).finally(() => busy.delete(target));
      busy.set(target, job);
      if (faults.length % 25 === 0) log(`chaos: ${faults.length} faults, ${Math.round((Date.now() - t0) / 1000)} s`);
      await sleep(gapMs);
    }
    await Promise.all(busy.values());
    log(`chaos: ${faults.length} faults injected; settling`);
    await sleep(3000);
    if (!(await world.termDaemon(30_000, "final"))) termTimeouts++;
    const hubCaughtUp = await world.waitHubCaughtUp(120_000);
    const { leaf, hub } = await world.readStreams();
    const verdict = analyse({ device: "chaos-pi", leaf, hub, attempts: world.attempts, runs: world.runs, faults });
    return { verdict, faults, elapsedMs: Date.now() - t0, hubCaughtUp, termTimeouts };
  } finally {
    current = undefined;
    await world.close();
  }

  async function inject(kind: FaultKind, ev: FaultEvent, holdMs: number): Promise<void> {
    switch (kind) {
      case "hub-kill":
        await world.hub.kill9();
        await sleep(holdMs);
        await world.hub.start();
        break;
      case "leaf-kill":
        await world.leaf.kill9();
        await sleep(holdMs);
        await world.restartLeaf();
        break;
      case "leaf-stop":
        world.signalLeaf("SIGSTOP");
        await sleep(holdMs);
        world.signalLeaf("SIGCONT");
        break;
      case "link-cut":
        await world.link.cut();
        await sleep(holdMs);
        await world.link.restore();
        break;
      case "daemon-kill":
        ev.leafUp = world.leafUp;
        ev.leafReadyForMs = world.leafReadyForMs;
        world.markDaemonFault(faults.indexOf(ev));
        await world.killDaemon();
        await sleep(holdMs / 3);
        await world.startDaemon();
        // Let the new process work a while before it can be hit again (startup takes seconds
        // on a loaded machine: back-to-back kills would test little but startup).
        await sleep(holdMs);
        break;
      case "daemon-term":
        ev.leafUp = world.leafUp;
        ev.leafReadyForMs = world.leafReadyForMs;
        world.markDaemonFault(faults.indexOf(ev));
        if (!(await world.termDaemon(30_000))) termTimeouts++;
        await sleep(holdMs / 3);
        await world.startDaemon();
        await sleep(holdMs);
        break;
    }
    ev.recoveredAt = Date.now();
  }
}

function sum<K extends "missing" | "visibleGaps" | "counted" | "invisible">(rows: Verdict["runs"], k: K): number {
  return rows.reduce((n, r) => n + r[k], 0);
}

/** The processes killed with their leaf up and ready that lost readings (to look up in daemon.log). */
function leafUpMissing(v: Verdict): string[] {
  const rows = v.runs.filter((r) => r.leafUpAtEnd && (r.leafReadyForMs ?? Infinity) >= LEAF_RECOVERY_MS && r.missing > 0);
  if (rows.length === 0) return [];
  return [`  killed with the leaf up and ready, yet missing readings: ${rows.map((r) => `process ${r.run} (fault #${r.fault}, ready ${((r.leafReadyForMs ?? NaN) / 1000).toFixed(1)} s): ${r.missing}`).join("; ")}`];
}

/** Missing readings per daemon process, grouped by how it ended and whether the leaf was up. */
function perEnding(v: Verdict): string {
  const groups = new Map<string, { n: number; missing: number; max: number }>();
  for (const r of v.runs) {
    const leaf = r.leafUpAtEnd === undefined ? "" : !r.leafUpAtEnd ? " (leaf down)" : (r.leafReadyForMs ?? Infinity) < LEAF_RECOVERY_MS ? " (leaf restarted < 2 s before)" : " (leaf up)";
    const key = r.end === "final" ? "final stop" : `${r.end}${leaf}`;
    const g = groups.get(key) ?? { n: 0, missing: 0, max: 0 };
    g.n++;
    g.missing += r.missing;
    g.max = Math.max(g.max, r.missing);
    groups.set(key, g);
  }
  return [...groups].map(([k, g]) => `${k}: ${g.n} processes, ${g.missing} missing (max ${g.max})`).join("; ");
}

function table(rows: (string | number)[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]!) : String(c).padStart(w[i]!))).join("  ")).join("\n");
}

export function summary(a: Args, r: Awaited<ReturnType<typeof runChaos>>): string {
  const v = r.verdict;
  const byKind = new Map<string, number>();
  for (const f of r.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const killsLeafDown = r.faults.filter((f) => f.leafUp === false).length;
  const lines = [
    `seed ${a.seed}, mix ${a.mix}, ${r.faults.length} faults in ${Math.round(r.elapsedMs / 1000)} s: ${[...byKind].map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `daemon kills/terms with the leaf down: ${killsLeafDown}; SIGTERMs that did not exit within 30 s: ${r.termTimeouts}; hub caught up: ${r.hubCaughtUp}`,
    "",
    table([
      ["sensor", "max seq", "leaf", "hub", "lost", "dup", "collisions", "silent"],
      ...v.sensors.map((s) => [s.sensor, s.maxSeq, s.leaf, s.hub, s.lost, s.duplicated, s.collisions, s.silentDrops]),
      ["total", "", v.totals.leaf, v.totals.hub, v.totals.lost, v.totals.duplicated, v.totals.collisions, v.totals.silentDrops],
    ]),
    "",
    `lost by cause: ${Object.entries(v.lossByCause).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `losses per daemon kill (nonzero): ${v.lossPerKill.filter((k) => k.lost > 0).map((k) => `#${k.fault} ${k.kind}${k.leafUp ? ` (leaf up${k.leafReadyForMs !== undefined ? `, ready ${(k.leafReadyForMs / 1000).toFixed(1)} s` : ""})` : " (leaf down)"}: ${k.lost}`).join("; ") || "none"}`,
    `hub = leaf: ${v.hubEqualsLeaf} (${v.leafOnly} only on the leaf, ${v.hubOnly} only on the hub)`,
    `daemon counters: ${v.daemonAckedNew} new PubAcks, ${v.daemonDropped} dropped (queue full), ${v.daemonLeftUnpublished} left unpublished at SIGTERM`,
    `readings accepted by a daemon and stored nowhere: ${sum(v.runs, "missing")} (${sum(v.runs, "visibleGaps")} visible gaps, ${sum(v.runs, "counted")} counted, ${v.invisibleLosses} without a trace)`,
    `  per ending: ${perEnding(v)}`,
    ...leafUpMissing(v),
    "",
    v.broken.length === 0 ? "PASS: every invariant holds" : `FAIL:\n${v.broken.map((b) => `  - ${b}`).join("\n")}`,
  ];
  return lines.join("\n");
}

async function main(): Promise<number> {
  let a: Args;
  try {
    a = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`chaos: ${(e as Error).message}\n`);
    return 2;
  }
  const log = (s: string) => (a.json ? process.stderr : process.stdout).write(`${s}\n`);
  log(`chaos: seed ${a.seed} (replay: npm run chaos -- --seed ${a.seed} --mix ${a.mix}${Number.isFinite(a.faults) ? ` --faults ${a.faults}` : ""}${Number.isFinite(a.durationMs) ? ` --duration ${a.durationMs / 1000}s` : ""})`);
  // Interrupted: remove every process and the working dir, then exit 2.
  const stop = () => void (current?.close() ?? Promise.resolve()).finally(() => process.exit(2));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    const r = await runChaos(a, log);
    log(summary(a, r));
    if (a.json) {
      const v = r.verdict;
      process.stdout.write(`${JSON.stringify({ seed: a.seed, mix: a.mix, faults: r.faults.length, elapsedMs: r.elapsedMs, hubCaughtUp: r.hubCaughtUp, termTimeouts: r.termTimeouts, ...v, losses: v.losses.slice(0, 500) }, null, 2)}\n`);
    }
    return r.verdict.broken.length === 0 && r.hubCaughtUp ? 0 : 1;
  } catch (e) {
    process.stderr.write(`chaos: harness failed: ${(e as Error).stack ?? String(e)}\n`);
    return 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main();
