/**
 * Shared set-up of the security tests: a hub with fleet JWT auth (the config `cloud hub-config`
 * prints), leaves A and B with their own device credentials, the hub streams, and daemons.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { addDevice, ensureHubConfigBucket, ensureHubStream } from "../../src/cloud/hub.js";
import { addDeviceLive, ensureLiveStreams } from "../../src/cloud/live.js";
import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { silentLogger } from "../../src/logger.js";
import { startHubAndLeaves, type HubAndLeaves, type NatsServer } from "../helpers/nats.js";
import { tempDir } from "../helpers/procs.js";

export const A = "dev-a";
export const B = "dev-b";

/** Hub (auth on) + leaves A and B, `cloud init` + `cloud add-device` done for both. */
export async function startFleet(cleanups: (() => Promise<unknown>)[], devices = [A, B]): Promise<HubAndLeaves> {
  const env = await startHubAndLeaves(devices, { auth: true });
  cleanups.push(() => env.stop());
  const nc = await env.hub.connect();
  try {
    await ensureHubStream(nc);
    await ensureHubConfigBucket(nc);
    await ensureLiveStreams(nc);
    for (const d of devices) {
      await addDevice(nc, d);
      await addDeviceLive(nc, d);
    }
  } finally {
    await nc.close();
  }
  return env;
}

/** A daemon on `leaf` with two simulated sensors (region eu-west), remote config on. */
export async function startDaemon(leaf: NatsServer, deviceId: string, cleanups: (() => Promise<unknown>)[], extra: Partial<BootstrapInput> = {}): Promise<Daemon> {
  const state = await tempDir("egw-state-");
  const v = validateBootstrap({
    device: { id: deviceId, region: "eu-west" },
    nats: { servers: [leaf.url] },
    http: false,
    state,
    remoteConfig: { cache: `${state}/config.json` },
    sensors: [
      { id: "temp", type: "temperature", driver: "simulated", interval: "50ms", unit: "Cel" },
      { id: "hum", type: "humidity", driver: "simulated", interval: "50ms", unit: "%RH" },
    ],
    ...extra,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const d = await Daemon.start({ config: v.value, logger: silentLogger(), linkCheckMs: 500 });
  cleanups.push(() => d.stop());
  return d;
}

/** Every permission violation the hub logged. */
export function violations(hub: NatsServer): string[] {
  return hub.log().split("\n").filter((l) => /Permissions Violation|Authorization Violation/i.test(l));
}

/** Collects what a core subscription receives. */
export function collect(nc: NatsConnection, subject: string): { subject: string; got: { subject: string; id: string }[] } {
  const c = { subject, got: [] as { subject: string; id: string }[] };
  nc.subscribe(subject, { callback: (_e, m) => void c.got.push({ subject: m.subject, id: m.headers?.get("Nats-Msg-Id") ?? m.string() }) });
  return c;
}
