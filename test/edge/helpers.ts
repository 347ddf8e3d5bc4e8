import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { silentLogger } from "../../src/logger.js";
import type { NatsServer } from "../helpers/nats.js";
import { tempDir } from "../helpers/procs.js";

/** A daemon with three simulated sensors on `leaf`, region eu-west. */
export async function startDaemon(leaf: NatsServer, deviceId: string, opts: { interval?: string; extra?: Partial<BootstrapInput> } = {}): Promise<Daemon> {
  const interval = opts.interval ?? "50ms";
  const v = validateBootstrap({
    device: { id: deviceId, region: "eu-west" },
    nats: { servers: [leaf.url] },
    remoteConfig: false,
    http: false,
    state: await tempDir("egw-state-"),
    sensors: [
      { id: `${deviceId}-temp`, type: "temperature", driver: "simulated", interval, unit: "Cel" },
      { id: `${deviceId}-hum`, type: "humidity", driver: "simulated", interval, unit: "%RH" },
      { id: `${deviceId}-power`, type: "energy", driver: "simulated", interval, unit: "W" },
    ],
    ...opts.extra,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return Daemon.start({ config: v.value, logger: silentLogger(), linkCheckMs: 500 });
}
