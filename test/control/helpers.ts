import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon, type DaemonOptions } from "../../src/daemon/daemon.js";
import type { DriverRegistry } from "../../src/drivers/registry.js";
import type { HardwareSeams } from "../../src/drivers/types.js";
import { silentLogger } from "../../src/logger.js";
import type { NatsServer } from "../helpers/nats.js";
import { tempDir } from "../helpers/procs.js";

export interface GatewayOptions {
  sensors?: BootstrapInput["sensors"];
  extra?: Partial<BootstrapInput>;
  registry?: DriverRegistry;
  hardware?: HardwareSeams;
  operations?: DaemonOptions["operations"];
}

/** A daemon on `leaf` (or any server URL), region eu-west, two simulated sensors by default, no HTTP. */
export async function startGateway(leaf: NatsServer | string, deviceId: string, opts: GatewayOptions = {}): Promise<Daemon> {
  const v = validateBootstrap({
    device: { id: deviceId, region: "eu-west" },
    nats: { servers: [typeof leaf === "string" ? leaf : leaf.url] },
    remoteConfig: false,
    http: false,
    state: await tempDir("egw-state-"),
    sensors: opts.sensors ?? [
      { id: `${deviceId}-temp`, type: "temperature", driver: "simulated", interval: "100ms", unit: "Cel", min: 18, max: 24 },
      { id: `${deviceId}-hum`, type: "humidity", driver: "simulated", interval: "100ms", unit: "%RH" },
    ],
    ...opts.extra,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return Daemon.start({
    config: v.value,
    logger: silentLogger(),
    linkCheckMs: 300,
    ...(opts.registry ? { registry: opts.registry } : {}),
    ...(opts.hardware ? { hardware: opts.hardware } : {}),
    operations: opts.operations ?? {},
  });
}

/**
 * A minimal Prometheus text-format (0.0.4) check: every line is a comment, a HELP/TYPE line or
 * `name{labels} value`; every sample's family has a TYPE. Returns the problems and the samples.
 */
export function parsePrometheus(text: string): { problems: string[]; samples: { name: string; labels: Record<string, string>; value: number }[]; types: Map<string, string> } {
  const problems: string[] = [];
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const types = new Map<string, string>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (!name || !["counter", "gauge", "histogram", "summary", "untyped"].includes(type ?? "")) problems.push(`bad TYPE line: ${line}`);
      else types.set(name, type!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = sample.exec(line);
    if (!m) {
      problems.push(`unparsable line: ${line}`);
      continue;
    }
    const value = m[3] === "NaN" ? NaN : m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") problems.push(`bad value: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const rest = m[2].replace(label, (_all, k: string, v: string) => {
        labels[k] = v;
        return "";
      });
      if (rest.replace(/,/g, "").trim() !== "") problems.push(`bad labels: ${line}`);
    }
    const family = m[1]!.replace(/_(bucket|sum|count|total|created)$/, "");
    if (!types.has(m[1]!) && !types.has(family)) problems.push(`sample without TYPE: ${m[1]}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { problems, samples, types };
}
