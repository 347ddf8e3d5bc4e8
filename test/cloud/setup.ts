/**
 * Shared set-up of the ingest-database tests: a JetStream server with a TELEMETRY stream on
 * `sensors.>` (the consumer side is the same as on the hub, whose stream sources the leaves),
 * readings published with their dedup ids, and a database of each kind.
 */
import { join } from "node:path";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { startJetStreamServer, type NatsServer } from "../helpers/nats.js";
import { PostgresServer } from "../helpers/postgres.js";
import { tempDir } from "../helpers/procs.js";

export async function hubWithStream(name: string): Promise<{ server: NatsServer; nc: NatsConnection }> {
  const server = await startJetStreamServer(name);
  const nc = await server.connect();
  await (await jetstreamManager(nc)).streams.add({ name: "TELEMETRY", subjects: ["sensors.>"], storage: StorageType.File });
  return { server, nc };
}

export interface Series {
  device: string;
  sensor: string;
  type: string;
  region: string;
  unit: string;
  /** seqs to publish, in order */
  seqs: number[];
  multi?: boolean;
}

/** The body of reading `seq` of `s` (ts = base + seq seconds, value = seq / 10). */
export function body(s: Series, seq: number, base: number): Record<string, unknown> {
  const common = { device: s.device, sensor: s.sensor, type: s.type, ts: base + seq * 1000, seq, quality: "good" };
  return s.multi ? { ...common, values: { pm2_5: seq, pm10: seq * 2 }, units: { pm2_5: "ug/m3", pm10: "ug/m3" } } : { ...common, value: seq / 10, unit: s.unit };
}

/**
 * Publishes the series to `sensors.<type>.<region>.<device>.<sensor>` with `Nats-Msg-Id`,
 * pipelined; `streamSeqs` (when given) receives `device.sensor.seq` → hub stream sequence.
 */
export async function publishSeries(nc: NatsConnection, series: Series[], base: number, streamSeqs?: Map<string, number>): Promise<number> {
  const js = jetstream(nc);
  const acks = [];
  for (const s of series) {
    for (const seq of s.seqs) {
      const h = headers();
      h.set("Nats-Msg-Id", `${s.device}.${s.sensor}.${seq}`);
      const id = `${s.device}.${s.sensor}.${seq}`;
      acks.push(js.publish(`sensors.${s.type}.${s.region}.${s.device}.${s.sensor}`, JSON.stringify(body(s, seq, base)), { headers: h }).then((a) => streamSeqs?.set(id, a.seq)));
      if (acks.length >= 1000) await Promise.all(acks.splice(0));
    }
  }
  await Promise.all(acks);
  return series.reduce((n, s) => n + s.seqs.length, 0);
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** 2 devices × 3 sensors, `n` readings each. */
export function fleet(n: number): Series[] {
  return [
    { device: "pi-a", sensor: "kitchen", type: "temperature", region: "eu-west", unit: "Cel", seqs: range(1, n) },
    { device: "pi-a", sensor: "hall", type: "humidity", region: "eu-west", unit: "%RH", seqs: range(1, n) },
    { device: "pi-a", sensor: "air", type: "pm", region: "eu-west", unit: "ug/m3", seqs: range(1, n), multi: true },
    { device: "pi-b", sensor: "kitchen", type: "temperature", region: "us-east", unit: "Cel", seqs: range(1, n) },
    { device: "pi-b", sensor: "meter", type: "energy", region: "us-east", unit: "Wh", seqs: range(1, n) },
    { device: "pi-b", sensor: "air", type: "pm", region: "us-east", unit: "ug/m3", seqs: range(1, n), multi: true },
  ];
}

/** A database of `kind`: its sink spec, and (for PostgreSQL) the server to stop and start. */
export async function database(kind: "sqlite" | "postgres"): Promise<{ spec: string; pg?: PostgresServer }> {
  if (kind === "sqlite") return { spec: `sqlite:${join(await tempDir("egw-sqlite-"), "readings.db")}` };
  const pg = await PostgresServer.create();
  return { spec: pg.url, pg };
}
