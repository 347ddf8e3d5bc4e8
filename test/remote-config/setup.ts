/**
 * Shared set-up for the remote-config tests: a hub with the config bucket and one leaf
 * (device pi-1), a daemon connected to the leaf, and collectors for readings and
 * `events.config` seen on the leaf.
 */
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { ensureConfigBucket } from "../../src/bridge/remote-config-bucket.js";
import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon, type DaemonOptions } from "../../src/daemon/daemon.js";
import { silentLogger } from "../../src/logger.js";
import { startHubAndLeaves, type HubAndLeaves } from "../helpers/nats.js";
import { tempDir } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

export const DEVICE = "pi-1";
export const KEY = `devices.${DEVICE}`;

export const sim = (id: string, interval = "50ms", extra: Record<string, unknown> = {}) => ({ id, type: "temperature", driver: "simulated", interval, ...extra });

export interface ConfigEvent {
  revision: number;
  status: "applied" | "rejected";
  changed?: string[];
  started?: string[];
  restarted?: string[];
  stopped?: string[];
  source?: string;
  errors?: { path: string; message: string }[];
}

/** Readings (per sensor, seq in arrival order) and config events seen on the leaf. */
export class Observer {
  readonly seqs = new Map<string, number[]>();
  readonly events: ConfigEvent[] = [];
  constructor(nc: NatsConnection) {
    nc.subscribe("sensors.>", {
      callback: (_e, m) => {
        const b = m.json<{ sensor: string; seq: number }>();
        const list = this.seqs.get(b.sensor) ?? [];
        list.push(b.seq);
        this.seqs.set(b.sensor, list);
      },
    });
    nc.subscribe(`gateway.${DEVICE}.events.config`, { callback: (_e, m) => void this.events.push(m.json<ConfigEvent>()) });
  }
  count(sensor: string): number {
    return this.seqs.get(sensor)?.length ?? 0;
  }
  /** Waits until `sensor` has `n` more readings than now. */
  async more(sensor: string, n: number, timeout = 15_000): Promise<void> {
    const from = this.count(sensor);
    await waitFor(() => this.count(sensor) >= from + n, { timeout, what: `${n} more readings of ${sensor}` });
  }
  event(revision: number, timeout = 15_000): Promise<ConfigEvent> {
    return waitFor(() => this.events.find((e) => e.revision === revision), { timeout, what: `events.config for revision ${revision}` });
  }
}

/** Seq numbers of one sensor increase by one, with no gap and no restart. */
export function gaps(seqs: number[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1]! + 1) out.push(`${seqs[i - 1]} → ${seqs[i]}`);
  return out;
}

export interface Env {
  net: HubAndLeaves;
  hubNc: NatsConnection;
  leafNc: NatsConnection;
  kv: KV;
  obs: Observer;
  close(): Promise<void>;
}

/** Hub (with the config bucket) + leaf pi-1, a hub connection with the bucket, an observer on the leaf. */
export async function startEnv(bucket: { maxValueSize?: number } = {}): Promise<Env> {
  const net = await startHubAndLeaves([DEVICE]);
  const hubNc = await net.hub.connect();
  const kv = await ensureConfigBucket(hubNc, bucket);
  const leafNc = await net.leaves[0]!.connect();
  const obs = new Observer(leafNc);
  return {
    net,
    hubNc,
    leafNc,
    kv,
    obs,
    async close() {
      await leafNc.close().catch(() => undefined);
      await hubNc.close().catch(() => undefined);
      await net.stop();
    },
  };
}

export async function bootstrap(leafUrl: string, extra: Partial<BootstrapInput> = {}, state?: string) {
  const dir = state ?? (await tempDir("egw-rc-state-"));
  const v = validateBootstrap({
    device: { id: DEVICE, region: "test" },
    nats: { servers: [leafUrl] },
    http: false,
    // Within the test leaf's store (256 MiB buffer + headroom).
    buffer: { maxBytes: "64MiB" },
    state: dir,
    log: { level: "silent" },
    sensors: [sim("alpha"), sim("beta")],
    ...extra,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return { cfg: v.value, state: dir, cache: join(dir, "config.json") };
}

export function startDaemon(opts: Partial<DaemonOptions> & Pick<DaemonOptions, "config">): Promise<Daemon> {
  return Daemon.start({ logger: silentLogger(), ...opts });
}
