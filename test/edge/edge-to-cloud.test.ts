import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { addDevice, ensureHubConfigBucket, ensureHubStream } from "../../src/cloud/hub.js";
import type { BootstrapInput } from "../../src/config/index.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import { cleanupNats, startHubAndLeaves, waitForLeafLink, type HubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { checkSequences, readStream, streamCount } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";
import { startDaemon } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

async function setUp(devices: string[]): Promise<HubAndLeaves> {
  const env = await startHubAndLeaves(devices);
  cleanups.push(() => env.stop());
  const nc = await env.hub.connect();
  await ensureHubStream(nc);
  await ensureHubConfigBucket(nc);
  for (const d of devices) await addDevice(nc, d);
  await nc.close();
  return env;
}

async function daemonOn(env: HubAndLeaves, i: number, id: string, interval?: string): Promise<Daemon> {
  const d = await startDaemon(env.leaves[i]!, id, { interval });
  cleanups.push(() => d.stop());
  return d;
}

/** Readings of `device` in the hub stream (the 4th subject token is the device id). */
async function deviceCount(nc: NatsConnection, device: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info("TELEMETRY", { subjects_filter: "sensors.>" });
  return Object.entries(info.state.subjects ?? {})
    .filter(([subject]) => subject.split(".")[3] === device)
    .reduce((n, [, count]) => n + count, 0);
}

/** Stops the daemon, then waits until the hub stream holds exactly what the leaf stream holds. */
async function expectHubEqualsLeaf(env: HubAndLeaves, daemon: Daemon, leafIndex = 0, timeout = 60_000) {
  await daemon.stop();
  expect(daemon.flushedCleanly).toBe(true);
  const leafNc = await env.leaves[leafIndex]!.connect();
  const hubNc = await env.hub.connect();
  try {
    const leaf = await readStream(leafNc, "TELEMETRY");
    expect(leaf.length).toBe(daemon.publisher.stats.accepted);
    // Sources recover 10–30 s after a reconnect on 2.9.10: wait on the condition.
    await waitFor(async () => (await deviceCount(hubNc, daemon.config.device.id)) >= leaf.length, { timeout, what: `hub to hold the leaf's ${leaf.length} readings` });
    const hub = (await readStream(hubNc, "TELEMETRY")).filter((r) => r.body.device === daemon.config.device.id);
    const check = checkSequences(hub);
    expect(check.problems).toEqual([]);
    expect(new Set(hub.map((r) => r.msgId))).toEqual(new Set(leaf.map((r) => r.msgId)));
    for (const [, r] of check.ranges) expect(r.first).toBe(1);
    return { leaf, hub };
  } finally {
    await leafNc.close();
    await hubNc.close();
  }
}

describe("edge to cloud › daemon → leaf → hub", () => {
  it("delivers live readings to a cloud wildcard subscriber and every reading to the hub stream", async () => {
    const env = await setUp(["pi-1"]);
    const hubNc = await env.hub.connect();
    cleanups.push(() => hubNc.close());
    const live: string[] = [];
    hubNc.subscribe("sensors.*.eu-west.>", { callback: (_e, m) => void live.push(m.subject) });
    await hubNc.flush();
    const daemon = await daemonOn(env, 0, "pi-1");
    await waitFor(() => new Set(live).size === 3 && live.length >= 30, { what: "live readings at the hub" });
    expect(new Set(live)).toEqual(new Set(["sensors.temperature.eu-west.pi-1.pi-1-temp", "sensors.humidity.eu-west.pi-1.pi-1-hum", "sensors.energy.eu-west.pi-1.pi-1-power"]));
    // The link monitor reports the uplink, the leaf buffer and the hub's lag for this device.
    await waitFor(() => daemon.link.hub === "up" && daemon.link.hubLag !== undefined && daemon.link.buffer.messages > 0, { what: "link state up with buffer and lag figures" });
    expect(daemon.link.buffer.bytes).toBeGreaterThan(0);
    await expectHubEqualsLeaf(env, daemon);
  });

  it("outage: hub killed -9 for a while, then restarted — the hub ends with exactly the leaf's readings", async () => {
    const env = await setUp(["pi-1"]);
    const daemon = await daemonOn(env, 0, "pi-1", "20ms");
    await waitFor(() => daemon.publisher.stats.published >= 50 && daemon.link.hub === "up", { what: "readings flowing" });
    await env.hub.kill9();
    const atKill = daemon.publisher.stats.accepted;
    await waitFor(() => daemon.link.hub === "down", { what: "daemon sees the uplink down", timeout: 20_000 });
    // Keep publishing through the outage (~10 s of readings at 150/s).
    await waitFor(() => daemon.publisher.stats.published >= atKill + 1500, { what: "readings stored on the leaf during the outage", timeout: 30_000 });
    expect(daemon.publisher.healthy).toBe(true);
    await env.hub.restart();
    await waitForLeafLink(env.leaves[0]!, 30_000);
    await waitFor(() => daemon.link.hub === "up", { what: "daemon sees the uplink up again", timeout: 30_000 });
    const { hub } = await expectHubEqualsLeaf(env, daemon);
    expect(hub.length).toBeGreaterThan(atKill + 1500);
  });

  it("link flap: cut and restore the leaf link five times — no gap, no duplicate at the hub", async () => {
    const env = await setUp(["pi-1"]);
    const daemon = await daemonOn(env, 0, "pi-1", "20ms");
    const leafNc = await env.leaves[0]!.connect();
    cleanups.push(() => leafNc.close());
    for (let i = 0; i < 5; i++) {
      await waitFor(() => daemon.link.hub === "up", { what: `link up before cut ${i + 1}`, timeout: 30_000 });
      await env.links[0]!.cut();
      await waitFor(() => daemon.link.hub === "down", { what: `link down after cut ${i + 1}`, timeout: 20_000 });
      const before = await streamCount(leafNc, "TELEMETRY");
      await waitFor(async () => (await streamCount(leafNc, "TELEMETRY")) >= before + 60, { what: "readings buffered on the leaf while cut" });
      await env.links[0]!.restore();
      await waitForLeafLink(env.leaves[0]!, 30_000);
    }
    await expectHubEqualsLeaf(env, daemon, 0, 90_000);
  });

  it("a device that boots while the hub is down reports the uplink once the hub comes up", async () => {
    const env = await setUp(["pi-1"]);
    await env.hub.kill9();
    const daemon = await daemonOn(env, 0, "pi-1");
    await waitFor(() => daemon.link.hub === "down" && daemon.link.buffer.messages > 0, { what: "link down, readings buffered on the leaf" });
    expect(daemon.link.hubLag).toBeUndefined();
    await env.hub.restart();
    await waitForLeafLink(env.leaves[0]!, 30_000);
    await waitFor(() => daemon.link.hub === "up" && daemon.link.hubLag !== undefined, { what: "link up with the hub's lag", timeout: 30_000 });
    await expectHubEqualsLeaf(env, daemon);
  });

  it("two devices on one hub, both with a sensor `kitchen`: each leaf stores only its own readings, the hub holds both apart", async () => {
    const env = await setUp(["pi-a", "pi-b"]);
    // Sensor ids are unique per device, not per fleet: the device token keeps the two apart.
    const withKitchen = (id: string): Partial<BootstrapInput> => ({
      sensors: [
        { id: `${id}-temp`, type: "temperature", driver: "simulated", interval: "50ms", unit: "Cel" },
        { id: "kitchen", type: "temperature", driver: "simulated", interval: "50ms", unit: "Cel" },
      ],
    });
    const a = await startDaemon(env.leaves[0]!, "pi-a", { extra: withKitchen("pi-a") });
    cleanups.push(() => a.stop());
    const b = await startDaemon(env.leaves[1]!, "pi-b", { extra: withKitchen("pi-b") });
    cleanups.push(() => b.stop());
    await waitFor(() => a.publisher.stats.published >= 30 && b.publisher.stats.published >= 30, { what: "both publishing" });
    const ra = await expectHubEqualsLeaf(env, a, 0);
    const rb = await expectHubEqualsLeaf(env, b, 1);
    for (const [device, r] of [["pi-a", ra], ["pi-b", rb]] as const) {
      expect(r.leaf.every((m) => m.body.device === device && m.subject === `sensors.temperature.eu-west.${device}.${m.body.sensor}`)).toBe(true);
      expect(new Set(r.leaf.map((m) => m.body.sensor))).toEqual(new Set([`${device}-temp`, "kitchen"]));
    }
    const hubNc = await env.hub.connect();
    const all = await readStream(hubNc, "TELEMETRY");
    await hubNc.close();
    expect(new Set(all.map((r) => r.body.device))).toEqual(new Set(["pi-a", "pi-b"]));
    expect(all.length).toBe(ra.leaf.length + rb.leaf.length);
    // Each device's `kitchen` has its own contiguous seq, under its own subject.
    for (const device of ["pi-a", "pi-b"]) {
      const kitchen = all.filter((r) => r.subject === `sensors.temperature.eu-west.${device}.kitchen`);
      expect(kitchen.length).toBeGreaterThan(0);
      expect(checkSequences(kitchen).problems).toEqual([]);
    }
  });
});
