import { afterAll, afterEach, describe, expect, it } from "vitest";
import { open } from "node:fs/promises";
import type { Daemon } from "../../src/daemon/daemon.js";
import { startDaemon } from "../edge/helpers.js";
import { cleanupNats, startJetStreamServer } from "../helpers/nats.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { readStream } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await stopPtyPairs();
  await cleanupNats();
  await cleanupTempDirs();
});

describe("daemon › serial sensor end to end", () => {
  it("publishes the valid lines of a serial-lines sensor on a real pty, skipping junk, with A2 bodies", async () => {
    const pty = await startPtyPair();
    const server = await startJetStreamServer();
    const daemon: Daemon = await startDaemon(server, "pi-s", {
      extra: {
        sensors: [{ id: "bench-temp", type: "temperature", driver: "serial-lines", port: pty.a, baudRate: 9600, format: "kv", field: "t", unit: "Cel", range: [-40, 85] }],
      },
    });
    cleanups.push(() => daemon.stop());
    const device = await open(pty.b, "w");
    cleanups.push(() => device.close());
    const runner = () => daemon.sensors().find((s) => s.state.id === "bench-temp")!;
    // The driver opens the port asynchronously: write until the first reading is counted.
    await waitFor(async () => {
      await device.write("t=21.5 h=40\r\n");
      return runner().state.published >= 1;
    }, { what: "the port open and a first reading", timeout: 15_000, interval: 200 });
    await device.write("garbage without a value\nt=99.5\nt=22.25\n");
    await waitFor(() => runner().state.published >= 3 && (runner().state.counters.rejected.parse ?? 0) >= 1, { what: "valid lines published, junk counted" });
    await waitFor(() => daemon.publisher.stats.queued === 0 && daemon.publisher.stats.inFlight === 0, { what: "publisher drained" });
    await daemon.stop();
    const nc = await server.connect();
    const stored = await readStream(nc, "TELEMETRY");
    await nc.close();
    const values = stored.map((r) => [r.body.value, r.body.quality]);
    // 99.5 is outside the configured range: published, but `uncertain`.
    expect(values.slice(-2)).toEqual([[99.5, "uncertain"], [22.25, "good"]]);
    expect(values.every(([v]) => v === 21.5 || v === 99.5 || v === 22.25)).toBe(true);
    expect(stored.every((r) => r.subject === `sensors.temperature.eu-west.${r.body.device}.bench-temp` && r.body.unit === "Cel")).toBe(true);
  });
});
