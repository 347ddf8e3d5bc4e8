import { afterAll, afterEach, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { IngestWorker, LiveIngestWorker, type IngestMessage } from "../../src/cloud/ingest.js";
import { silentLogger } from "../../src/logger.js";
import { spawnCli } from "../helpers/cli.js";
import { cleanupNats, startJetStreamServer, type NatsServer } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, stopProc, tempDir } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

const open: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.stop().catch(() => undefined)));
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

/**
 * A JetStream server holding a TELEMETRY stream. (On the hub the stream sources the devices'
 * leaf streams instead of listening on sensors.>; the consumer side is the same.)
 */
async function hubWithStream(name: string): Promise<{ server: NatsServer; nc: NatsConnection }> {
  const server = await startJetStreamServer(name);
  const nc = await server.connect();
  open.push({ stop: () => nc.close() });
  await (await jetstreamManager(nc)).streams.add({ name: "TELEMETRY", subjects: ["sensors.>"], storage: StorageType.File });
  return { server, nc };
}

async function publishReadings(nc: NatsConnection, n: number, sensor = "t1"): Promise<void> {
  const js = jetstream(nc);
  const acks = [];
  for (let seq = 1; seq <= n; seq++) {
    const h = headers();
    h.set("Nats-Msg-Id", `pi-1.${sensor}.${seq}`);
    const body = { device: "pi-1", sensor, type: "temperature", ts: Date.now(), value: seq, unit: "Cel", seq, quality: "good" };
    acks.push(js.publish(`sensors.temperature.eu-west.pi-1.${sensor}`, JSON.stringify(body), { headers: h }));
  }
  await Promise.all(acks);
}

describe("cloud ingest › durable pull consumer shared by workers", () => {
  it("two workers with the same queue split the readings: none lost, none processed twice", async () => {
    const { server, nc } = await hubWithStream("ingest-split");
    const seen: string[][] = [[], []];
    const workers: IngestWorker[] = [];
    for (const i of [0, 1]) {
      const c = await server.connect();
      open.push({ stop: () => c.close() });
      const w = await IngestWorker.start(c, {
        queue: "archive",
        batch: 50,
        logger: silentLogger(),
        handler: async (m: IngestMessage) => {
          seen[i]!.push(m.msgId!);
          await new Promise((r) => setImmediate(r));
        },
      });
      workers.push(w);
      open.push(w);
    }
    const n = 2000;
    await publishReadings(nc, n);
    await waitFor(() => seen[0]!.length + seen[1]!.length >= n, { what: `${n} readings processed`, timeout: 30_000 });
    await waitFor(async () => {
      const r = await workers[0]!.report();
      return r.numPending === 0 && r.numAckPending === 0 ? r : undefined;
    }, { what: "every reading acked" });
    const all = [...seen[0]!, ...seen[1]!];
    expect(all.length).toBe(n);
    expect(new Set(all).size).toBe(n);
    expect(seen[0]!.length).toBeGreaterThan(0);
    expect(seen[1]!.length).toBeGreaterThan(0);
    const r = await workers[1]!.report();
    expect(r).toMatchObject({ stream: "TELEMETRY", consumer: "archive", numPending: 0, numAckPending: 0, numRedelivered: 0 });
    expect(workers[0]!.counts.processed + workers[1]!.counts.processed).toBe(n);
  });

  it("a handler error: nak with delay, redelivered until max_deliver, then given up; the others are acked", async () => {
    const { nc } = await hubWithStream("ingest-fail");
    const attempts = new Map<string, number[]>();
    const w = await IngestWorker.start(nc, {
      queue: "flaky",
      maxDeliver: 3,
      nakDelayMs: 100,
      // nats-server 2.9.10 keeps a terminated reading in num_ack_pending until its ack_wait passes.
      ackWaitMs: 1000,
      logger: silentLogger(),
      handler: (m) => {
        attempts.set(m.msgId!, [...(attempts.get(m.msgId!) ?? []), m.deliveryCount!]);
        if ((m.reading as { seq: number }).seq === 5) throw new Error("database down");
      },
    });
    open.push(w);
    await publishReadings(nc, 10);
    await waitFor(() => w.counts.terminated === 1 && w.counts.processed === 9, { what: "9 processed, 1 given up", timeout: 20_000 });
    expect(attempts.get("pi-1.t1.5")).toEqual([1, 2, 3]);
    expect([...attempts.entries()].filter(([id]) => id !== "pi-1.t1.5").every(([, d]) => d.length === 1)).toBe(true);
    expect(w.counts).toEqual({ processed: 9, failed: 3, terminated: 1, redeliveries: 2 });
    const r = await waitFor(async () => {
      const x = await w.report();
      return x.numAckPending === 0 ? x : undefined;
    }, { what: "nothing left unacked" });
    expect(r.numPending).toBe(0);
    expect(r.numRedelivered).toBe(1);
    // Nothing is delivered again after the give-up.
    expect(attempts.get("pi-1.t1.5")).toEqual([1, 2, 3]);
  });

  it("--live: a core queue group shares the messages published while connected (nothing stored is replayed)", async () => {
    const { nc } = await hubWithStream("ingest-live");
    await publishReadings(nc, 20, "before"); // stored before the workers: live mode never sees these
    const got: string[][] = [[], []];
    const subs = [0, 1].map((i) => new LiveIngestWorker(nc, { queue: "live", logger: silentLogger(), handler: (m) => void got[i]!.push(m.msgId!) }));
    subs.forEach((s) => open.push(s));
    await nc.flush();
    for (let i = 1; i <= 200; i++) nc.publish(`sensors.temperature.eu-west.pi-1.live`, JSON.stringify({ seq: i }), { headers: (() => { const h = headers(); h.set("Nats-Msg-Id", `pi-1.live.${i}`); return h; })() });
    await waitFor(() => got[0]!.length + got[1]!.length === 200, { what: "200 live messages" });
    expect(new Set([...got[0]!, ...got[1]!]).size).toBe(200);
    expect(got.flat().some((id) => id.includes("before"))).toBe(false);
    expect(got[0]!.length).toBeGreaterThan(0);
    expect(got[1]!.length).toBeGreaterThan(0);
  });

  it("`edge-gateway cloud ingest` writes JSON lines to --out, reports consumer info on SIGUSR1 and on exit", async () => {
    const { server, nc } = await hubWithStream("ingest-cli");
    await publishReadings(nc, 50);
    const dir = await tempDir("egw-ingest-");
    const out = join(dir, "readings.jsonl");
    const p = spawnCli(["cloud", "ingest", "--server", server.url, "--queue", "cli", "--out", out, "--max-deliver", "4", "--ack-wait", "10s"]);
    open.push({ stop: () => stopProc(p) });
    await waitFor(async () => (await readFile(out, "utf8").catch(() => "")).split("\n").filter(Boolean).length === 50, { what: "50 lines in --out", timeout: 20_000 });
    const lines = (await readFile(out, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { seq: number; device: string });
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await waitFor(async () => (await (await jetstreamManager(nc)).consumers.info("TELEMETRY", "cli")).num_ack_pending === 0, { what: "acks" });
    p.kill("SIGUSR1");
    await waitFor(() => /report: consumer TELEMETRY\/cli: pending 0, ack pending 0, redelivered 0/.test(p.stderr()), { what: "SIGUSR1 report" });
    const info = await (await jetstreamManager(nc)).consumers.info("TELEMETRY", "cli");
    expect(info.config.max_deliver).toBe(4);
    expect(info.config.ack_wait).toBe(10_000_000_000);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toMatch(/exit: consumer TELEMETRY\/cli: pending 0, ack pending 0, redelivered 0, waiting pulls \d+; this worker: processed 50, failed 0/);
  });
});
