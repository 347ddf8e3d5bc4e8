import { afterAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { Daemon } from "../../src/daemon/daemon.js";
import { cleanupNats, startJetStreamServer } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { parsePrometheus, startGateway } from "./helpers.js";

const daemons: Daemon[] = [];
afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

async function get(address: string, path: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(`http://${address}${path}`);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
}

function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const { samples } = parsePrometheus(text);
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe("http › /healthz and /metrics on loopback", () => {
  it("/healthz: 200 while publishing, 503 with the reason while the local leaf is down, 200 when it returns", async () => {
    const leaf = await startJetStreamServer("leaf");
    const d = await startGateway(leaf, "pi-http", { extra: { http: { listen: "127.0.0.1:0" } } });
    daemons.push(d);
    const address = d.operations!.http!.address!;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    await waitFor(async () => (await get(address, "/healthz")).status === 200, { what: "healthz 200" });
    const ok = await get(address, "/healthz");
    expect(ok.type).toBe("application/json");
    expect(JSON.parse(ok.body)).toMatchObject({ status: "ok", queued: expect.any(Number) });

    await leaf.kill9();
    const down = await waitFor(async () => {
      const r = await get(address, "/healthz");
      return r.status === 503 && /readings queued/.test(r.body) && (JSON.parse(r.body) as { queued: number }).queued > 0 ? r : undefined;
    }, { what: "healthz 503 with queued readings", timeout: 20_000 });
    expect(JSON.parse(down.body)).toMatchObject({ status: "unavailable", reason: expect.stringMatching(/^local leaf unreachable; \d+ readings queued$/) });

    await leaf.restart();
    await waitFor(async () => (await get(address, "/healthz")).status === 200, { what: "healthz 200 after the leaf returned", timeout: 30_000 });
    expect((await get(address, "/nope")).status).toBe(404);
  });

  it("/metrics: valid Prometheus text from the daemon's own registry, and the counters move", async () => {
    const leaf = await startJetStreamServer("leaf2");
    const d = await startGateway(leaf, "pi-metrics", { extra: { http: { listen: "127.0.0.1:0" } } });
    daemons.push(d);
    const address = d.operations!.http!.address!;
    await waitFor(() => d.publisher.stats.published > 5 && d.link.buffer.messages > 0, { what: "readings stored and buffer counted", timeout: 20_000 });
    const first = await get(address, "/metrics");
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const parsed = parsePrometheus(first.body);
    expect(parsed.problems).toEqual([]);
    for (const name of [
      "edge_gateway_sensor_published_total",
      "edge_gateway_sensor_rejected_total",
      "edge_gateway_driver_errors_total",
      "edge_gateway_driver_reopens_total",
      "edge_gateway_publisher_queue_depth",
      "edge_gateway_publisher_dropped_total",
      "edge_gateway_leaf_stream_messages",
      "edge_gateway_leaf_stream_bytes",
      "edge_gateway_hub_source_lag",
      "edge_gateway_config_revision",
      "edge_gateway_link_up",
      "edge_gateway_uptime_seconds",
    ]) {
      expect(parsed.types.has(name), name).toBe(true);
    }
    expect(parsed.types.get("edge_gateway_sensor_published_total")).toBe("counter");
    expect(parsed.types.get("edge_gateway_publisher_queue_depth")).toBe("gauge");
    const published1 = value(first.body, "edge_gateway_sensor_published_total", { sensor: "pi-metrics-temp", device: "pi-metrics" })!;
    expect(published1).toBeGreaterThan(0);
    expect(value(first.body, "edge_gateway_leaf_stream_messages")).toBeGreaterThan(0);
    // No hub behind this leaf: link down, lag unknown (absent), no remote config revision (absent).
    expect(value(first.body, "edge_gateway_link_up")).toBe(0);
    expect(value(first.body, "edge_gateway_hub_source_lag")).toBeUndefined();
    // Process metrics come from the daemon's registry too.
    expect(parsed.types.has("process_cpu_user_seconds_total")).toBe(true);

    await waitFor(async () => (value((await get(address, "/metrics")).body, "edge_gateway_sensor_published_total", { sensor: "pi-metrics-temp" }) ?? 0) > published1, {
      what: "published counter to move",
    });
    const later = (await get(address, "/metrics")).body;
    expect(value(later, "edge_gateway_publisher_published_total")).toBeGreaterThan(0);
    expect(value(later, "edge_gateway_uptime_seconds")).toBeGreaterThan(0);
  });

  it("a port already in use: a clear error in the log, and the daemon runs on", async () => {
    const leaf = await startJetStreamServer("leaf3");
    const first = await startGateway(leaf, "pi-port-a", { extra: { http: { listen: "127.0.0.1:0" } } });
    daemons.push(first);
    const taken = first.operations!.http!.address!;
    const lines: string[] = [];
    const logger = pino({ level: "error" }, new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) }));
    const { Daemon } = await import("../../src/daemon/daemon.js");
    const { validateBootstrap } = await import("../../src/config/index.js");
    const { tempDir } = await import("../helpers/procs.js");
    const v = validateBootstrap({
      device: { id: "pi-port-b", region: "eu-west" },
      nats: { servers: [leaf.url] },
      remoteConfig: false,
      http: { listen: taken },
      state: await tempDir("egw-state-"),
      sensors: [{ id: "b-temp", type: "temperature", driver: "simulated", interval: "100ms" }],
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const second = await Daemon.start({ config: v.value, logger });
    daemons.push(second);
    expect(second.operations!.http!.address).toBeUndefined();
    await waitFor(() => lines.some((l) => /EADDRINUSE|in use/.test(l)), { what: "port-in-use error logged" });
    expect(lines.join("")).toMatch(/cannot serve \/healthz and \/metrics on 127\.0\.0\.1:\d+: port \d+ is in use by another process/);
    await waitFor(() => second.publisher.stats.published > 0, { what: "the second daemon publishing anyway" });
  });
});
