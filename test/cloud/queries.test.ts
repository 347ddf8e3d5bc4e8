import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { GapAudit } from "../../src/cloud/audit.js";
import { SinkIngestWorker } from "../../src/cloud/sink-worker.js";
import { openSink, parseSinkSpec, type StoredReading } from "../../src/cloud/sinks/index.js";
import { silentLogger } from "../../src/logger.js";
import { main } from "../../src/cli/main.js";
import { runCli as spawnRunCli } from "../helpers/cli.js";
import { cleanupNats } from "../helpers/nats.js";
import { cleanupPostgres } from "../helpers/postgres.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { database, fleet, hubWithStream, publishSeries, range } from "./setup.js";

const open: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.stop().catch(() => undefined);
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupPostgres();
  await cleanupTempDirs();
});

const without = (all: number[], gone: number[]) => all.filter((s) => !gone.includes(s));

/** One CSV line into its fields (RFC 4180 quoting). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  const re = /(?:^|,)(?:"((?:[^"]|"")*)"|([^,]*))/g;
  for (const m of line.matchAll(re)) out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!);
  return out;
}

/** Runs `edge-gateway ARGS` in this process (the same code as the binary, without a process start per query). */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (t) => (stdout += t.endsWith("\n") ? t : `${t}\n`), err: (t) => (stderr += t.endsWith("\n") ? t : `${t}\n`) });
  return { code, stdout, stderr };
}

describe.each(["sqlite", "postgres"] as const)("cloud history | latest | gaps › %s", (kind) => {
  it("gaps reports exactly the seqs removed (not published, or deleted from the stream) across 2 devices × 3 sensors, tells missing from not yet ingested; history and latest return what was published", async () => {
    const { server, nc } = await hubWithStream(`queries-${kind}`);
    open.push({ stop: () => nc.close() });
    const db = await database(kind);
    const base = Date.parse("2026-12-01T08:00:00.000Z");
    const series = fleet(30);
    const [aKitchen, aHall, , bKitchen, bMeter] = series;
    aKitchen!.seqs = without(range(1, 30), [5]);
    aHall!.seqs = without(range(1, 30), [10, 11, 12]);
    bKitchen!.seqs = without(range(1, 30), [1]);
    bMeter!.seqs = without(range(1, 30), [25, 26]);
    const streamSeqs = new Map<string, number>();
    const n = await publishSeries(nc, series, base, streamSeqs);
    // Removed from the device's readings in the hub stream before anything ingested them.
    const jsm = await jetstreamManager(nc);
    for (const id of ["pi-b.meter.20", "pi-b.air.7"]) expect(await jsm.streams.deleteMessage("TELEMETRY", streamSeqs.get(id)!)).toBe(true);

    const spec = parseSinkSpec(db.spec);
    if (typeof spec === "string") throw new Error(spec);
    const sink = await openSink(spec);
    open.push({ stop: () => sink.close() });
    const wc = await server.connect();
    open.push({ stop: () => wc.close() });
    const worker = await SinkIngestWorker.start(wc, { queue: "db", sink, logger: silentLogger() });
    open.push(worker);
    await waitFor(async () => {
      const info = await jsm.consumers.info("TELEMETRY", "db");
      return info.num_pending === 0 && info.num_ack_pending === 0 && worker.counts.processed === n - 2;
    }, { what: "every reading in the stream ingested", timeout: 30_000 });

    const gapsCli = async (...extra: string[]) => {
      const r = await runCli(["cloud", "gaps", "--db", db.spec, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const audit = JSON.parse(await gapsCli("--queue", "db", "--server", server.url, "--json")) as GapAudit;
    expect(audit.gaps.map(({ device, sensor, from, to, count }) => ({ device, sensor, from, to, count }))).toEqual([
      { device: "pi-a", sensor: "hall", from: 10, to: 12, count: 3 },
      { device: "pi-a", sensor: "kitchen", from: 5, to: 5, count: 1 },
      { device: "pi-b", sensor: "air", from: 7, to: 7, count: 1 },
      { device: "pi-b", sensor: "kitchen", from: 1, to: 1, count: 1 },
      { device: "pi-b", sensor: "meter", from: 20, to: 20, count: 1 },
      { device: "pi-b", sensor: "meter", from: 25, to: 26, count: 2 },
    ]);
    // The time span comes from the stored neighbours' ts (reading seq k was read at base + k s).
    expect(audit.gaps[0]).toMatchObject({ afterTs: base + 9000, beforeTs: base + 13_000 });
    expect(audit.gaps[3]!.afterTs).toBeUndefined();
    expect(audit.gaps[3]!.beforeTs).toBe(base + 2000);
    expect(audit.totals).toEqual({ sensors: 6, sensorsWithGaps: 5, stored: n - 2, missing: 9, gaps: 6 });
    expect(audit.consumer).toMatchObject({ consumer: "db", numPending: 0, numAckPending: 0, notYetIngested: 0 });
    expect(audit.provisional).toBe(false);

    const table = await gapsCli("--device", "pi-a", "--queue", "db", "--server", server.url);
    expect(table).toMatch(/^pi-a\s+hall\s+10\.\.12\s+3\s+2026-12-01T08:00:09\.000Z\s+2026-12-01T08:00:13\.000Z\s+4\.0s$/m);
    expect(table).toMatch(/^pi-a\s+kitchen\s+5\s+1\s/m);
    expect(table).not.toContain("pi-b");
    expect(table).toContain("totals: 3 sensors, 86 readings stored, 4 missing in 2 gaps (2 sensors with gaps)");
    expect(table).toContain("0 readings not yet ingested: the gaps above are missing");

    const recent = JSON.parse(await gapsCli("--since", new Date(base + 15_500).toISOString(), "--json")) as GapAudit;
    expect(recent.gaps.map((g) => `${g.device}/${g.sensor}:${g.from}..${g.to}`)).toEqual(["pi-b/meter:20..20", "pi-b/meter:25..26"]);

    const hist = await runCli(["cloud", "history", "pi-a", "kitchen", "--db", db.spec, "--since", new Date(base).toISOString(), "--json"]);
    expect(hist.code, hist.stderr).toBe(0);
    const readings = JSON.parse(hist.stdout) as StoredReading[];
    expect(readings.map((r) => r.seq)).toEqual(aKitchen!.seqs);
    expect(readings[0]).toEqual({ device: "pi-a", sensor: "kitchen", seq: 1, type: "temperature", region: "eu-west", ts: base + 1000, value: 0.1, unit: "Cel", quality: "good", subject: "sensors.temperature.eu-west.pi-a.kitchen", streamSeq: streamSeqs.get("pi-a.kitchen.1") });
    const window = await runCli(["cloud", "history", "pi-b", "air", "--db", db.spec, "--since", new Date(base + 2000).toISOString(), "--until", new Date(base + 5000).toISOString(), "--csv"]);
    const [header, ...lines] = window.stdout.trim().split("\n").map(csvFields);
    expect(header).toEqual(["device", "sensor", "seq", "ts", "time", "value", "values", "unit", "units", "quality"]);
    // JSON columns compared parsed: PostgreSQL's jsonb orders keys its own way.
    expect(lines.map((f) => [...f.slice(0, 6), JSON.parse(f[6]!), f[7], JSON.parse(f[8]!), f[9]])).toEqual(
      [2, 3, 4].map((k) => ["pi-b", "air", String(k), String(base + k * 1000), new Date(base + k * 1000).toISOString(), "", { pm2_5: k, pm10: k * 2 }, "", { pm2_5: "ug/m3", pm10: "ug/m3" }, "good"]),
    );

    const latest = await runCli(["cloud", "latest", "--db", db.spec, "--region", "us-east", "--json"]);
    expect(latest.code, latest.stderr).toBe(0);
    const last = JSON.parse(latest.stdout) as (StoredReading & { ageMs: number })[];
    expect(last.map((r) => `${r.device}/${r.sensor}#${r.seq}`)).toEqual(["pi-b/air#30", "pi-b/kitchen#30", "pi-b/meter#30"]);
    expect(last[2]).toMatchObject({ type: "energy", value: 3, unit: "Wh", ts: base + 30_000 });
    expect(last[0]!.values).toEqual({ pm2_5: 30, pm10: 60 });
    expect(last.every((r) => r.ageMs >= Date.now() - base - 30_000 - 60_000)).toBe(true);
    const pmTable = await runCli(["cloud", "latest", "--db", db.spec, "--type", "pm"]);
    expect(pmTable.stdout).toMatch(/^DEVICE\s+SENSOR\s+TYPE\s+REGION\s+SEQ\s+VALUE\s+UNIT\s+QUALITY\s+AGE$/m);
    const piA = pmTable.stdout.split("\n").find((l) => l.startsWith("pi-a"));
    expect(piA).toMatch(/^pi-a\s+air\s+pm\s+eu-west\s+30\s+(pm2_5=30 pm10=60|pm10=60 pm2_5=30)\s+(pm2_5:ug\/m3 pm10:ug\/m3|pm10:ug\/m3 pm2_5:ug\/m3)\s+good\s+\d+d \d+h$/);
    expect(pmTable.stdout.trim().split("\n")).toHaveLength(3);

    // Readings in the stream that no worker has taken yet: the audit says so (provisional).
    await worker.stop();
    await publishSeries(nc, [{ ...aKitchen!, seqs: [5, 31, 32] }], base);
    const pending = JSON.parse(await gapsCli("--queue", "db", "--server", server.url, "--json")) as GapAudit;
    expect(pending.consumer).toMatchObject({ numPending: 3, notYetIngested: 3 });
    expect(pending.provisional).toBe(true);
    expect(pending.totals.missing).toBe(9);
    expect(await gapsCli("--queue", "db", "--server", server.url)).toContain("3 readings not yet ingested (pending 3, ack pending 0): provisional, they may fill gaps");
  }, 120_000);
});

describe("cloud history | latest | gaps › input", () => {
  it("bad --db, missing database file and JSON lines give clear errors (exit 1 / 2)", async () => {
    // As a process: exit codes as a script sees them.
    const bad = await spawnRunCli(["cloud", "gaps", "--db", "mysql://x"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--db "mysql://x": unknown sink: write sqlite:FILE, postgres://USER@HOST/DB or jsonl:FILE');
    const jsonl = await runCli(["cloud", "latest", "--db", "jsonl:-"]);
    expect(jsonl.code).toBe(1);
    expect(jsonl.stderr).toContain("JSON lines cannot be queried");
    const missing = await runCli(["cloud", "history", "pi-a", "t", "--db", "sqlite:/nonexistent/x.db"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot open SQLite database \/nonexistent\/x\.db: .*is it the file `cloud ingest --sink sqlite:FILE` writes\?/);
    const since = await runCli(["cloud", "history", "pi-a", "t", "--db", "sqlite:/tmp/x.db", "--since", "yesterday"]);
    expect(since.code).toBe(1);
    expect(since.stderr).toContain("--since yesterday: write a duration ago (30m, 1h, 7d) or a date/time");
  }, 60_000);
});

describe("sinks › lazy loading", () => {
  it("the daemon and the CLI do not load the SQLite binding until a sqlite sink is opened", async () => {
    const { startProc } = await import("../helpers/procs.js");
    const script = `
      import { readFileSync } from "node:fs";
      const mapped = () => readFileSync("/proc/self/maps", "utf8").includes("better_sqlite3.node");
      await import("./dist/daemon/daemon.js");
      await import("./dist/cli/main.js");
      const before = mapped();
      const { openSink } = await import("./dist/cloud/sinks/index.js");
      const sink = await openSink({ kind: "sqlite", file: ":memory:" });
      console.log(JSON.stringify({ before, after: mapped() }));
      await sink.close();`;
    const p = startProc(process.execPath, ["--input-type=module", "-e", script], { cwd: new URL("../..", import.meta.url).pathname });
    expect(await p.exited, p.stderr()).toBe(0);
    expect(JSON.parse(p.stdout())).toEqual({ before: false, after: true });
  });
});
