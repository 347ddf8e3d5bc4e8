/**
 * Bounded shutdown and early signals (issue 18): one deadline over stop drivers → flush →
 * drain; a drain that cannot reach the leaf gives up; a wedged driver close blocks neither
 * later config revisions nor the shutdown; a SIGTERM during startup is a clean exit 0.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createServer, type Server, type Socket } from "node:net";
import { access, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { defaultRegistry } from "../../src/drivers/registry.js";
import { createSimulated } from "../../src/drivers/simulated.js";
import type { Driver, DriverFactory, Reading } from "../../src/drivers/types.js";
import { silentLogger } from "../../src/logger.js";
import { cleanupNats, startJetStreamServer, type NatsServer } from "../helpers/nats.js";
import { cleanupTempDirs, startProc, tempDir } from "../helpers/procs.js";
import { checkSequences, readStream } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await cleanupNats();
  await cleanupTempDirs();
});

function cfg(servers: string[], state: string, extra: Partial<BootstrapInput> = {}) {
  const v = validateBootstrap({ device: { id: "pi-s", region: "eu-west" }, nats: { servers }, remoteConfig: false, http: false, state, sensors: [], ...extra });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.value;
}

/** Settles to "resolved" / "rejected" and records it, so a test can wait for it with a deadline. */
function track(p: Promise<unknown>): { state: "pending" | "resolved" | "rejected" } {
  const t = { state: "pending" as "pending" | "resolved" | "rejected" };
  p.then(
    () => (t.state = "resolved"),
    () => (t.state = "rejected"),
  );
  return t;
}

/** A driver like a wedged USB adapter: one reading, then neither more readings nor a close. */
const wedged: DriverFactory<{ id: string; type: string }> = (sensor) => {
  const never = new Promise<never>(() => undefined);
  const driver: Driver = {
    async *start(): AsyncGenerator<Reading> {
      yield { sensor: sensor.id, type: sensor.type, ts: Date.now(), value: 1, quality: "good" };
      await never;
    },
    close: () => never,
    [Symbol.asyncDispose]: () => never,
  };
  return driver;
};

describe("daemon › bounded shutdown", () => {
  it("a wedged driver close blocks neither a later config revision nor the shutdown", async () => {
    const server = await startJetStreamServer();
    const registry = {
      ...defaultRegistry(),
      simulated: ((s, ctx) => (s.id === "stuck" ? wedged(s, ctx) : createSimulated(s, ctx))) as typeof createSimulated,
    };
    const sim = (id: string) => ({ id, type: "temperature", driver: "simulated" as const, interval: "20ms" });
    const config = cfg([server.url], await tempDir(), { sensors: [sim("stuck"), sim("ok")] });
    const daemon = await Daemon.start({ config, logger: silentLogger(), registry });
    cleanups.push(() => daemon.stop());
    await waitFor(() => daemon.publisher.stats.published >= 5, { what: "readings published" });

    // Removing the wedged sensor must not hold the config lock forever…
    const sensors = cfg([server.url], "/unused", { sensors: [sim("ok"), sim("fresh")] }).sensors;
    const doc = (list: typeof sensors) => ({ source: "bootstrap" as const, document: { sensors: list, outputs: [], mqtt: null, log: config.log } });
    const first = track(daemon.applyConfig(doc(sensors)));
    await waitFor(() => first.state !== "pending", { what: "the config without the wedged sensor applied", timeout: 20_000 });
    expect(first.state).toBe("resolved");
    // …so the revision after it applies too, and its new sensor runs.
    const second = track(daemon.applyConfig(doc(sensors.slice(1))));
    await waitFor(() => second.state !== "pending", { what: "the next config applied", timeout: 20_000 });
    expect(daemon.sensors().map((r) => r.state.id)).toEqual(["fresh"]);

    const stopped = track(daemon.stop());
    await waitFor(() => stopped.state !== "pending", { what: "shutdown to finish", timeout: 30_000 });
    expect(stopped.state).toBe("resolved");
  });

  it("a leaf that stopped answering (SIGSTOP) does not hold the shutdown: the drain gives up and closes", async () => {
    const server: NatsServer = await startJetStreamServer();
    cleanups.push(async () => server.resume());
    const config = cfg([server.url], await tempDir(), { sensors: [{ id: "a", type: "temperature", driver: "simulated", interval: "20ms" }] });
    const daemon = await Daemon.start({ config, logger: silentLogger(), flushTimeoutMs: 1000 });
    cleanups.push(() => daemon.stop());
    await waitFor(() => daemon.publisher.stats.published >= 5, { what: "readings published" });
    server.pause();
    const stopped = track(daemon.stop());
    // shutdownTimeout defaults to 20 s; without a bound the drain waits for the leaf forever.
    await waitFor(() => stopped.state !== "pending", { what: "shutdown to finish with the leaf hung", timeout: 40_000, interval: 250 });
    expect(stopped.state).toBe("resolved");
    expect(daemon.connection?.isClosed()).toBe(true);
  });
});

describe("daemon › readings held at a stop are kept for the next start (issue 18)", () => {
  it("stopped while the leaf is down, the queue goes to held.json; the next start stores every reading under its seq: no gap, no duplicate", async () => {
    const server: NatsServer = await startJetStreamServer();
    const state = await tempDir();
    const config = cfg([server.url], state, { shutdownTimeout: "3s", sensors: [{ id: "a", type: "temperature", driver: "simulated", interval: "10ms" }] });
    const first = await Daemon.start({ config, logger: silentLogger() });
    cleanups.push(() => first.stop());
    await waitFor(() => first.publisher.stats.published >= 5, { what: "readings published" });
    await server.kill9();
    await waitFor(() => first.publisher.stats.queued >= 50, { what: "readings held while the leaf is down" });
    await first.stop();
    expect(first.flushedCleanly).toBe(false);
    const file = JSON.parse(await readFile(join(state, "held.json"), "utf8")) as { readings: { seq?: number }[] };
    expect(file.readings.length).toBeGreaterThanOrEqual(50);
    expect(file.readings.every((r) => Number.isInteger(r.seq))).toBe(true);

    await server.restart();
    const second = await Daemon.start({ config, logger: silentLogger() });
    cleanups.push(() => second.stop());
    await waitFor(async () => !(await exists(join(state, "held.json"))), { what: "held.json removed once its readings are stored", timeout: 15_000 });
    await waitFor(() => second.publisher.stats.published >= file.readings.length + 5, { what: "the held readings and new ones stored" });
    await second.stop();
    const nc = await server.connect();
    cleanups.push(() => nc.close());
    const stored = await readStream(nc, "TELEMETRY");
    // Per sensor: seqs contiguous from 1, no msg id twice.
    const { problems, ranges } = checkSequences(stored);
    expect(problems).toEqual([]);
    expect(ranges.get("pi-s.a")?.first).toBe(1);
    const held = new Set(file.readings.map((r) => r.seq));
    expect(stored.filter((r) => held.has(r.body.seq)).length).toBe(held.size);
  });
});

describe("daemon › signals during startup (edge-gateway run)", () => {
  it("a SIGTERM while the daemon is still starting exits 0, not killed by the signal", async () => {
    // A leaf that accepts the connection but never says hello: the daemon is in its startup
    // (waiting for the leaf's config mirror) for as long as it likes.
    const sockets = new Set<Socket>();
    const leaf: Server = createServer((s) => {
      sockets.add(s);
      s.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => leaf.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          leaf.close(resolve);
        }),
    );
    const port = (leaf.address() as { port: number }).port;
    const state = await tempDir();
    const file = join(state, "gateway.yaml");
    await writeFile(
      file,
      JSON.stringify({
        device: { id: "pi-s", region: "eu-west" },
        nats: { servers: [`nats://127.0.0.1:${port}`] },
        http: false,
        state,
        sensors: [{ id: "a", type: "temperature", driver: "simulated", interval: "50ms" }],
      }),
    );
    // The built launcher, as systemd runs it (test/global-setup.ts builds dist/).
    const proc = startProc(process.execPath, [join(import.meta.dirname, "../../bin/edge-gateway.js"), "run", "--config", file]);
    cleanups.push(async () => proc.kill("SIGKILL"));
    await waitFor(() => sockets.size > 0, { what: "the daemon connecting to its leaf", timeout: 20_000, interval: 5 });
    proc.kill("SIGTERM");
    await waitFor(() => proc.child.exitCode !== null || proc.child.signalCode !== null, { what: "the daemon to exit", timeout: 30_000 });
    expect(await proc.exited, proc.stdout() + proc.stderr()).toBe(0);
  });
});
