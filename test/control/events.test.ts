import { afterAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import type { SensorOf } from "../../src/config/schema.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import { defaultRegistry, type DriverRegistry } from "../../src/drivers/registry.js";
import type { Driver, DriverContext } from "../../src/drivers/types.js";
import { ticker } from "../../src/drivers/util.js";
import { cleanupNats, startHubAndLeaves, waitForLeafLink, type HubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { startGateway } from "./helpers.js";

const nets: HubAndLeaves[] = [];
const daemons: Daemon[] = [];
const conns: NatsConnection[] = [];
afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await Promise.all(daemons.map((d) => d.stop()));
  await Promise.all(nets.map((n) => n.stop()));
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

function collect(nc: NatsConnection, subject: string): Record<string, unknown>[] {
  const got: Record<string, unknown>[] = [];
  nc.subscribe(subject, { callback: (_e: Error | null, m: Msg) => void got.push(m.json()) });
  return got;
}

/** A `simulated` stand-in that throws "sensor unplugged" on every tick (and start) while `plug.broken`. */
function flakyRegistry(plug: { broken: boolean }): DriverRegistry {
  return {
    ...defaultRegistry(),
    simulated: (cfg: SensorOf<"simulated">, ctx: DriverContext): Driver => {
      const closed = new AbortController();
      return {
        async *start(signal) {
          for await (const _ of ticker(cfg.interval, AbortSignal.any([signal, closed.signal]))) {
            if (plug.broken) throw new Error("sensor unplugged");
            ctx.counters.read++;
            yield { sensor: cfg.id, type: cfg.type, ts: Date.now(), value: 1, quality: "good" };
          }
        },
        async close() {
          closed.abort();
        },
        async [Symbol.asyncDispose]() {
          closed.abort();
        },
      };
    },
  };
}

describe("events › gateway.<id>.events.*", () => {
  it("driver: one `failed` event however often the driver retries, then one `recovered`", async () => {
    const net = await startHubAndLeaves(["pi-ev"]);
    nets.push(net);
    const hubNc = await net.hub.connect();
    conns.push(hubNc);
    const events = collect(hubNc, "gateway.pi-ev.events.driver");
    await hubNc.flush();
    const plug = { broken: false };
    const d = await startGateway(net.leaves[0]!, "pi-ev", { registry: flakyRegistry(plug), sensors: [{ id: "probe", type: "temperature", driver: "simulated", interval: "50ms" }] });
    daemons.push(d);
    await waitFor(() => d.publisher.healthy && d.link.hub === "up", { what: "daemon connected, link up", timeout: 20_000 });
    const runner = d.sensors()[0]!;

    plug.broken = true;
    // The runner restarts the driver with backoff (0.5 s, 1 s, …): each restart fails again.
    await waitFor(() => runner.state.counters.errors >= 3, { what: "three driver failures", timeout: 20_000 });
    plug.broken = false;
    await waitFor(() => events.some((e) => e.status === "recovered"), { what: "recovered event", timeout: 20_000 });
    expect(events.map((e) => ({ sensor: e.sensor, status: e.status, error: e.error }))).toEqual([
      { sensor: "probe", status: "failed", error: "sensor unplugged" },
      { sensor: "probe", status: "recovered", error: undefined },
    ]);
    expect(events[0]).toMatchObject({ device: "pi-ev", ts: expect.any(Number) });
    expect(runner.state.health.state).toBe("ok");
  });

  it("link: `down` when the leaf link is cut (seen on the leaf), `up` when it returns (seen on the hub too)", async () => {
    const net = await startHubAndLeaves(["pi-link"]);
    nets.push(net);
    const d = await startGateway(net.leaves[0]!, "pi-link");
    daemons.push(d);
    const leafNc = await net.leaves[0]!.connect();
    const hubNc = await net.hub.connect();
    conns.push(leafNc, hubNc);
    const local = collect(leafNc, "gateway.pi-link.events.link");
    const remote = collect(hubNc, "gateway.pi-link.events.link");
    await waitFor(() => d.link.hub === "up", { what: "link up", timeout: 20_000 });

    await net.links[0]!.cut();
    await waitFor(() => local.some((e) => e.hub === "down"), { what: "link down event on the leaf", timeout: 20_000 });
    await net.links[0]!.restore();
    await waitForLeafLink(net.leaves[0]!);
    await waitFor(() => remote.some((e) => e.hub === "up"), { what: "link up event at the hub", timeout: 30_000 });
    const down = local.find((e) => e.hub === "down")!;
    expect(down).toMatchObject({ device: "pi-link", hub: "down", buffer: { messages: expect.any(Number) } });
    await waitFor(() => local.slice(local.indexOf(down)).some((e) => e.hub === "up"), { what: "link up event on the leaf after the down one" });
  });
});

describe("events › config, through `reload` of the bootstrap file", () => {
  it("reload applies the file's sensors (events.config applied) and refuses an invalid file (rejected, with paths)", async () => {
    const { writeFile } = await import("node:fs/promises");
    const { join } = await import("node:path");
    const { loadBootstrap } = await import("../../src/config/load.js");
    const { Daemon } = await import("../../src/daemon/daemon.js");
    const { silentLogger } = await import("../../src/logger.js");
    const { tempDir } = await import("../helpers/procs.js");
    const { requestGateway } = await import("../../src/cloud/control-client.js");
    const { startJetStreamServer } = await import("../helpers/nats.js");
    const server = await startJetStreamServer("reload");
    const dir = await tempDir("egw-reload-");
    const file = join(dir, "gateway.yaml");
    const head = ["device: { id: pi-rl, region: eu-west }", `nats: { servers: ["${server.url}"] }`, "remoteConfig: false", "http: false", `state: ${join(dir, "state")}`, "sensors:"];
    const sensor = (id: string) => `  - { id: ${id}, type: temperature, driver: simulated, interval: 100ms }`;
    await writeFile(file, [...head, sensor("a")].join("\n"));
    const d = await Daemon.start({ config: await loadBootstrap(file), logger: silentLogger(), operations: { configFile: file } });
    daemons.push(d);
    const nc = await server.connect();
    conns.push(nc);
    const events = collect(nc, "gateway.pi-rl.events.config");
    await waitFor(() => d.operations?.control, { what: "control service up" });
    // The service's subscriptions reach the server after it is up (its connection flushes them
    // asynchronously): a request from this other connection right away can meet no responders.
    await waitFor(() => requestGateway(nc, "pi-rl", "status"), { what: "the control service answering on the server" });

    await writeFile(file, [...head, sensor("a"), sensor("b")].join("\n"));
    const applied = await requestGateway<{ status: string; started: string[] }>(nc, "pi-rl", "reload");
    expect(applied).toMatchObject({ status: "applied", started: ["b"], restarted: [], stopped: [] });
    expect(d.sensors().map((r) => r.state.id)).toEqual(["a", "b"]);

    await writeFile(file, [...head, "  - { id: c, type: temperature, driver: simulated, interval: fast }"].join("\n"));
    await expect(requestGateway(nc, "pi-rl", "reload")).rejects.toMatchObject({
      status: 409,
      message: expect.stringMatching(/is invalid; the previous config keeps running: .*\n\s+sensors\[0\]\.interval: /s),
      body: { errors: [{ path: "sensors[0].interval", message: expect.any(String) }] },
    });
    // The header form is one line.
    const raw = await nc.request("gateway.pi-rl.reload", "", { timeout: 5000 });
    expect(raw.headers?.get("Nats-Service-Error")).toMatch(/^[^\n]*is invalid; the previous config keeps running: [^\n]*; sensors\[0\]\.interval: /);
    expect(d.sensors().map((r) => r.state.id)).toEqual(["a", "b"]);
    await waitFor(() => events.length >= 3, { what: "three config events" });
    expect(events[0]).toMatchObject({ device: "pi-rl", status: "applied", started: ["b"] });
    expect(events[1]).toMatchObject({ status: "rejected", errors: [{ path: "sensors[0].interval", message: expect.any(String) }] });
  });
});

describe("events › gateway.<id>.events.dropped (issue 18)", () => {
  it("readings over a sensor's rate cap are counted per sensor in events.dropped, status and /metrics; other sensors lose nothing", async () => {
    const { startJetStreamServer } = await import("../helpers/nats.js");
    const { tempDir } = await import("../helpers/procs.js");
    const { validateBootstrap } = await import("../../src/config/index.js");
    const { Daemon } = await import("../../src/daemon/daemon.js");
    const { silentLogger } = await import("../../src/logger.js");
    const { gatewayStatus } = await import("../../src/daemon/status.js");
    const leaf = await startJetStreamServer();
    const nc = await leaf.connect();
    conns.push(nc);
    const events = collect(nc, "gateway.pi-rl.events.dropped");
    const v = validateBootstrap({
      device: { id: "pi-rl", region: "eu-west" },
      nats: { servers: [leaf.url] },
      remoteConfig: false,
      http: { listen: "127.0.0.1:0" },
      state: await tempDir(),
      buffer: { maxRatePerSensor: 20 },
      sensors: [
        { id: "chatty", type: "count", driver: "simulated", interval: "2ms" },
        { id: "calm", type: "count", driver: "simulated", interval: "100ms" },
      ],
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const daemon = await Daemon.start({ config: v.value, logger: silentLogger(), lossReportMs: 200 });
    daemons.push(daemon);
    const ev = await waitFor(() => events.find((e) => ((e.sensors as Record<string, { rateLimited: number }>)?.chatty?.rateLimited ?? 0) > 0), { what: "an events.dropped for the chatty sensor" });
    expect(ev).toMatchObject({ device: "pi-rl", sinceMs: expect.any(Number) });
    expect(events.every((e) => !("calm" in (e.sensors as object)))).toBe(true);
    const rows = gatewayStatus(daemon).sensors;
    expect(rows.find((r) => r.id === "chatty")?.lost?.rateLimited).toBeGreaterThan(0);
    expect(rows.find((r) => r.id === "calm")?.lost).toBeUndefined();
    const at = daemon.operations!.http!.address!;
    const metrics = await (await fetch(`http://${at}/metrics`)).text();
    expect(metrics).toMatch(/^edge_gateway_publisher_sensor_lost_total\{sensor="chatty",reason="rateLimited"[^}]*\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^edge_gateway_publisher_rate_limited_total(\{[^}]*\})? [1-9]\d*$/m);
    expect(metrics).not.toMatch(/sensor_lost_total\{sensor="calm"/);
  });
});
