/**
 * The publisher against a real nats-server: issue 18's causes (each test fails on 0.1's
 * publisher) and the PubAck tracking of issue 13.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Publisher, type StoredResult } from "../../src/bridge/publisher.js";
import { SeqStore } from "../../src/bridge/seq-store.js";
import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon } from "../../src/daemon/daemon.js";
import type { Reading } from "../../src/drivers/types.js";
import { silentLogger } from "../../src/logger.js";
import { spawnCli } from "../helpers/cli.js";
import { cleanupNats, startJetStreamServer, type NatsServer } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, tempDir } from "../helpers/procs.js";
import { checkSequences, readStream, streamCount } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

const DEVICE = "pi-p";

function reading(sensor: string, i: number): Reading {
  return { sensor, type: "temperature", ts: Date.now(), value: i, unit: "Cel", quality: "good" };
}

async function publisher(opts: { queueSize?: number; maxRatePerSensor?: number; state?: string; seqs?: SeqStore } = {}) {
  const seqs = opts.seqs ?? (await SeqStore.open(opts.state ?? (await tempDir()), silentLogger()));
  const p = new Publisher({
    deviceId: DEVICE,
    region: "eu-west",
    stream: "TELEMETRY",
    maxBytes: 64 * 2 ** 20,
    maxAgeMs: 3_600_000,
    duplicateWindowMs: 120_000,
    queueSize: opts.queueSize ?? 10_000,
    maxInFlight: 64,
    maxRatePerSensor: opts.maxRatePerSensor,
    seqs,
    logger: silentLogger(),
  });
  cleanups.push(async () => {
    await p.close();
    await seqs.close();
  });
  return p;
}

async function connectTo(server: NatsServer, reconnect = false) {
  const { connect } = await import("@nats-io/transport-node");
  const nc = await connect({ servers: server.url, reconnect, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  cleanups.push(() => nc.close());
  return nc;
}

function daemonConfig(server: NatsServer, state: string, extra: Partial<BootstrapInput> = {}) {
  const input: BootstrapInput = {
    device: { id: DEVICE, region: "eu-west" },
    nats: { servers: [server.url] },
    remoteConfig: false,
    http: false,
    state,
    log: { level: "info" },
    sensors: ["a", "b", "c"].map((id) => ({ id, type: "temperature", driver: "simulated" as const, interval: "20ms" })),
    ...extra,
  };
  const v = validateBootstrap(input);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return { input, cfg: v.value };
}

describe("publisher › seqs are never reused (issue 18 #1)", () => {
  it("a daemon killed -9 soon after start, with the stream's last message an older retry, restarts above every seq it used", async () => {
    const server = await startJetStreamServer();
    const state = await tempDir();
    const { input, cfg } = daemonConfig(server, state);
    const file = join(state, "gateway.yaml");
    await writeFile(file, JSON.stringify(input));
    const nc = await connectTo(server);

    // Killed within the first seconds: 0.1 wrote seq.json only every 5 s.
    const first = spawnCli(["run", "--config", file]);
    await waitFor(async () => (await streamCount(nc, "TELEMETRY")) >= 30, { what: "first run publishing", timeout: 20_000 });
    first.kill("SIGKILL");
    await first.exited;
    const before = await readStream(nc, "TELEMETRY");

    // After a leaf crash a timed-out publish can be stored after newer ones: the stream's last
    // message of each sensor then carries an old seq (issue 18: "stream held seq 1371 after 1617").
    const js = jetstream(nc);
    for (const s of ["a", "b", "c"]) {
      await js.publish(`sensors.temperature.eu-west.${DEVICE}.${s}`, JSON.stringify({ device: DEVICE, sensor: s, type: "temperature", ts: Date.now(), value: 1, seq: 1, quality: "good" }), { msgID: `late-retry-${s}` });
    }

    const second = await Daemon.start({ config: cfg, logger: silentLogger() });
    cleanups.push(() => second.stop());
    await waitFor(() => second.publisher.stats.published >= 30, { what: "second run publishing" });
    await second.stop();
    const s = second.publisher.stats;
    expect(s.duplicates).toBe(0);
    expect(s.collisions).toBe(0);
    const after = (await readStream(nc, "TELEMETRY")).filter((r) => r.msgId?.startsWith(`${DEVICE}.`));
    // Every reading of the second run is stored: none was taken for a duplicate of the first run's.
    expect(after.length - before.length).toBe(s.accepted);
    const firstIds = new Set(before.map((r) => r.msgId));
    expect(after.slice(before.length).filter((r) => firstIds.has(r.msgId))).toEqual([]);
  });

  it("a msg id already in the stream on a reading's first attempt is a collision: counted, and the reading is stored under a fresh seq", async () => {
    const server = await startJetStreamServer();
    const nc = await connectTo(server);
    await (await jetstreamManager(nc)).streams.add({ name: "TELEMETRY", subjects: ["sensors.>"] });
    // The stream holds seq 5 of sensor s, then (stream order) an old seq 1: the floor is 1, so
    // the publisher's seq 5 is a msg id the stream has seen.
    const js = jetstream(nc);
    const subject = `sensors.temperature.eu-west.${DEVICE}.s`;
    await js.publish(subject, JSON.stringify({ device: DEVICE, sensor: "s", seq: 5, value: -5 }), { msgID: `${DEVICE}.s.5` });
    await js.publish(subject, JSON.stringify({ device: DEVICE, sensor: "s", seq: 1, value: -1 }), { msgID: `${DEVICE}.s.1` });
    const p = await publisher();
    p.attach(nc);
    const results: StoredResult[] = [];
    for (let i = 0; i < 6; i++) p.accept(reading("s", i), (r) => results.push(r));
    expect(await p.flush(10_000)).toBe(true);
    expect(p.stats.collisions).toBe(1);
    expect(p.sensorLosses().get("s")?.collisions).toBe(1);
    expect(results.map((r) => r.stored)).toEqual([true, true, true, true, true, true]);
    const ours = (await readStream(nc, "TELEMETRY")).filter((r) => typeof r.body.value === "number" && r.body.value >= 0);
    expect(ours.map((r) => r.body.value).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ours.map((r) => r.body.seq)).not.toContain(5);
  });

  it("writes seq.json before the first seq of a block, and rarely: a clean close writes the exact next seq", async () => {
    const state = await tempDir();
    const seqs = await SeqStore.open(state, silentLogger());
    expect(seqs.next("x")).toBeUndefined();
    await seqs.reserved();
    const onDisk = JSON.parse(await (await import("node:fs/promises")).readFile(join(state, "seq.json"), "utf8"));
    expect(onDisk.next.x).toBeGreaterThan(1);
    const got: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = seqs.next("x") ?? (await seqs.reserved(), seqs.next("x"));
      if (s !== undefined) got.push(s);
    }
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1));
    // A block is reserved before its seqs are used; far fewer writes than seqs.
    expect(seqs.writes).toBeLessThan(20);
    await seqs.close();
    const closed = JSON.parse(await (await import("node:fs/promises")).readFile(join(state, "seq.json"), "utf8"));
    expect(closed).toMatchObject({ clean: true, next: { x: got.length + 1 } });
  });
});

describe("publisher › cold start (issue 13)", () => {
  for (const streamHolds of ["nothing", "another device's readings"] as const) {
    it(`50 sensors' first readings need one seq.json write, not one per sensor (stream holds ${streamHolds})`, async () => {
      const server = await startJetStreamServer();
      const nc = await connectTo(server);
      await (await jetstreamManager(nc)).streams.add({ name: "TELEMETRY", subjects: ["sensors.>"] });
      if (streamHolds !== "nothing") {
        // A stream that is not empty: every sensor's floor is looked up (in parallel) first.
        await jetstream(nc).publish("sensors.temperature.eu-west.other.s", "{}", { msgID: "other.s.1" });
      }
      const seqs = await SeqStore.open(await tempDir(), silentLogger());
      const p = await publisher({ seqs });
      for (let i = 0; i < 50; i++) p.accept(reading(`s${i}`, i));
      p.attach(nc);
      expect(await p.flush(10_000)).toBe(true);
      expect(p.stats.published).toBe(50);
      // 0.1 and the first cut of 0.2 wrote one block per sensor, one after the other (50 writes,
      // ~10 ms each with fsync): the whole cold start waited for them.
      expect(seqs.writes).toBeLessThanOrEqual(2);
      const stored = (await readStream(nc, "TELEMETRY")).filter((r) => r.msgId?.startsWith(`${DEVICE}.`));
      expect(stored.map((r) => r.body.seq)).toEqual(Array(50).fill(1));
    });
  }
});

describe("seq store › unclean stop", () => {
  it("a store reopened without close() starts above every reserved seq and reports the skipped range", async () => {
    const state = await tempDir();
    const killed = await SeqStore.open(state, silentLogger());
    expect(killed.next("x")).toBeUndefined();
    await killed.reserved();
    const used = [1, 2, 3, 4, 5].map(() => killed.next("x"));
    expect(used).toEqual([1, 2, 3, 4, 5]);
    // No close(): as if the process was killed -9 here.
    const next = await SeqStore.open(state, silentLogger());
    const first = next.next("x") ?? (await next.reserved(), next.next("x"));
    expect(first).toBe(17);
    expect(next.skipped.get("x")).toEqual([1, 16]);
  });
});

describe("publisher › a reading lost from memory leaves a gap (issue 18)", () => {
  it("readings held while the leaf is down already have their seqs: a process killed then leaves a gap that covers them all", async () => {
    const server = await startJetStreamServer();
    const state = await tempDir();
    const open = async () => {
      const seqs = await SeqStore.open(state, silentLogger());
      const p = new Publisher({ deviceId: DEVICE, region: "eu-west", stream: "TELEMETRY", maxBytes: 64 * 2 ** 20, maxAgeMs: 3_600_000, duplicateWindowMs: 120_000, queueSize: 10_000, maxInFlight: 64, seqs, logger: silentLogger() });
      cleanups.push(() => p.close());
      return { p, seqs };
    };
    const first = await open();
    const nc1 = await connectTo(server, true);
    first.p.attach(nc1);
    for (let i = 0; i < 5; i++) first.p.accept(reading("k", i));
    expect(await first.p.flush(10_000)).toBe(true);
    await server.kill9();
    await waitFor(() => !first.p.leafConnected, { what: "leaf gone" });
    // 100 readings at a sensor's pace (the seq store's block writes finish in between), held in memory.
    for (let i = 5; i < 105; i++) {
      first.p.accept(reading("k", i));
      await first.seqs.reserved();
    }
    expect(first.p.stats.queued).toBe(100);
    // Killed -9 here: nothing is closed, the 100 readings are gone.
    await nc1.close();
    await server.restart();
    const second = await open();
    const nc2 = await connectTo(server);
    second.p.attach(nc2);
    for (let i = 0; i < 5; i++) second.p.accept(reading("k", 1000 + i));
    expect(await second.p.flush(10_000)).toBe(true);
    const seqs = (await readStream(nc2, "TELEMETRY")).map((r) => r.body.seq);
    expect(seqs.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    // The lost readings had seqs 6..105: the consumer sees a gap over every one of them.
    expect(seqs.length).toBe(10);
    expect(seqs[5]).toBeGreaterThan(105);
    // And the restart declared (at least the tail of) that gap as skipped.
    const [, to] = second.seqs.skipped.get("k")!;
    expect(to).toBeGreaterThanOrEqual(105);
  });
});

describe("publisher › a leaf that dies (issue 18 #2)", () => {
  it("readings in flight when the leaf is killed -9 go out again first, in order, before newer ones", async () => {
    const server = await startJetStreamServer();
    const { cfg } = daemonConfig(server, await tempDir(), { sensors: ["a", "b", "c"].map((id) => ({ id, type: "temperature", driver: "simulated" as const, interval: "10ms" })) });
    const daemon = await Daemon.start({ config: cfg, logger: silentLogger() });
    cleanups.push(() => daemon.stop());
    await waitFor(() => daemon.publisher.stats.published >= 30, { what: "publishing" });
    // The leaf hangs (readings go out, no PubAck comes back), then dies.
    server.signal("SIGSTOP");
    await waitFor(() => daemon.publisher.stats.inFlight >= 10, { what: "readings in flight to the hung leaf" });
    const published = daemon.publisher.stats.published;
    await server.restart();
    await waitFor(() => daemon.publisher.stats.accepted > 0 && daemon.publisher.stats.queued === 0 && daemon.publisher.stats.inFlight === 0 && daemon.publisher.stats.published > published + 60, { what: "everything stored", timeout: 30_000 });
    await daemon.stop();
    const nc = await connectTo(server);
    const stored = await readStream(nc, "TELEMETRY");
    expect(checkSequences(stored).problems).toEqual([]);
    // In stream order, each sensor's seqs only go up: nothing sent before the crash was stored
    // after something sent after it.
    const last = new Map<string, number>();
    const late: string[] = [];
    for (const r of stored) {
      if ((last.get(r.body.sensor) ?? 0) > r.body.seq) late.push(`${r.body.sensor} ${r.body.seq} after ${last.get(r.body.sensor)}`);
      last.set(r.body.sensor, Math.max(r.body.seq, last.get(r.body.sensor) ?? 0));
    }
    expect(late).toEqual([]);
  });

  it("a hung leaf that wakes up gets every reading once: resends after the ack timeout are deduplicated", async () => {
    const server = await startJetStreamServer();
    const nc = await connectTo(server, true);
    const p = await publisher();
    p.attach(nc);
    // The sensor's first reading goes through first (its seq floor is looked up once).
    p.accept(reading("h", 0));
    expect(await p.flush(10_000)).toBe(true);
    server.signal("SIGSTOP");
    for (let i = 1; i < 40; i++) p.accept(reading("h", i));
    // The loopback ack timeout (2 s) passes: everything in flight is sent again.
    await waitFor(() => p.stats.retries > 0, { what: "a resend after the ack timeout", timeout: 15_000 });
    server.signal("SIGCONT");
    expect(await p.flush(20_000)).toBe(true);
    const stored = await readStream(nc, "TELEMETRY");
    expect(stored.length).toBe(40);
    expect(checkSequences(stored).problems).toEqual([]);
    expect(p.stats.published).toBe(40);
    expect(p.stats.collisions).toBe(0);
  });
});

describe("publisher › every loss leaves a trace, overload is fair (issue 18)", () => {
  it("a chatty sensor evicts its own backlog, not the other sensors' readings", async () => {
    const server = await startJetStreamServer();
    const p = await publisher({ queueSize: 200 });
    // The leaf is not reachable yet: everything waits in memory.
    for (let i = 0; i < 2000; i++) {
      p.accept(reading("chatty", i));
      if (i % 100 === 0) for (const s of ["quiet-1", "quiet-2", "quiet-3"]) p.accept(reading(s, i));
    }
    expect(p.stats.queued).toBe(200);
    const nc = await connectTo(server);
    p.attach(nc);
    expect(await p.flush(15_000)).toBe(true);
    const { ranges } = checkSequences(await readStream(nc, "TELEMETRY"));
    for (const s of ["quiet-1", "quiet-2", "quiet-3"]) expect(ranges.get(`${DEVICE}.${s}`)).toEqual({ first: 1, last: 20, count: 20 });
    // The chatty sensor's dropped readings used up their seqs: the consumer sees the gap.
    expect(ranges.get(`${DEVICE}.chatty`)).toEqual({ first: 2000 - 140 + 1, last: 2000, count: 140 });
    const losses = p.sensorLosses();
    expect(losses.get("chatty")?.dropped).toBe(2060 - 200);
    for (const s of ["quiet-1", "quiet-2", "quiet-3"]) expect(losses.get(s)).toBeUndefined();
  });

  it("a per-sensor rate cap (setRateCap) drops what is over it, counted per sensor; other sensors are untouched", async () => {
    const server = await startJetStreamServer();
    const p = await publisher();
    p.setRateCap("flood", 50);
    const nc = await connectTo(server);
    p.attach(nc);
    const results: StoredResult[] = [];
    for (let i = 0; i < 500; i++) p.accept(reading("flood", i), (r) => results.push(r));
    for (let i = 0; i < 10; i++) p.accept(reading("calm", i));
    expect(await p.flush(10_000)).toBe(true);
    const flood = p.sensorLosses().get("flood")!;
    expect(flood.rateLimited).toBeGreaterThanOrEqual(500 - 60);
    expect(results.filter((r) => !r.stored && r.reason === "rate-limited").length).toBe(flood.rateLimited);
    expect(p.sensorLosses().get("calm")).toBeUndefined();
    const { ranges } = checkSequences(await readStream(nc, "TELEMETRY"));
    expect(ranges.get(`${DEVICE}.calm`)?.count).toBe(10);
    expect(ranges.get(`${DEVICE}.flood`)?.count).toBe(500 - flood.rateLimited);
  });

  it("accept(reading, onStored) tells each reading's fate once: stored with its seq after the PubAck, or dropped", async () => {
    const server = await startJetStreamServer();
    const p = await publisher({ queueSize: 3 });
    const fates: StoredResult[] = [];
    for (let i = 0; i < 5; i++) p.accept(reading("m", i), (r) => fates.push(r));
    expect(fates).toEqual([
      { stored: false, reason: "dropped", seq: 1 },
      { stored: false, reason: "dropped", seq: 2 },
    ]);
    const nc = await connectTo(server);
    p.attach(nc);
    expect(await p.flush(10_000)).toBe(true);
    expect(fates.slice(2)).toEqual([
      { stored: true, seq: 3, duplicate: false },
      { stored: true, seq: 4, duplicate: false },
      { stored: true, seq: 5, duplicate: false },
    ]);
  });
});

describe("publisher › memory (issue 13)", () => {
  it("an acknowledged reading is released at once, not held until the ack-timeout check (0.5 s later)", async () => {
    // Held that long, every reading outlived a young-generation GC and was promoted: the old
    // generation doubled at 1k readings/s.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const server = await startJetStreamServer();
    const p = await publisher();
    p.attach(await connectTo(server));
    expect(await p.flush(10_000)).toBe(true); // the stream exists; the ack timer is not armed
    const refs: WeakRef<Reading>[] = [];
    const stored = await new Promise<number>((resolve) => {
      let n = 0;
      for (let i = 0; i < 20; i++) {
        const r = reading("w", i);
        refs.push(new WeakRef(r));
        p.accept(r, (f) => f.stored && ++n === 20 && resolve(performance.now()));
      }
    });
    await new Promise(setImmediate);
    gc();
    expect(performance.now() - stored).toBeLessThan(400); // before the check could have run
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });
});
