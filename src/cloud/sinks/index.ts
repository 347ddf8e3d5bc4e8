/**
 * Ingest sinks: where `cloud ingest` writes readings, chosen by a spec string.
 *
 * - `sqlite:FILE` — embedded database, one file, no server (better-sqlite3, loaded lazily)
 * - `postgres://…` / `postgresql://…` — PostgreSQL (TimescaleDB hypertable when available)
 * - `jsonl:FILE` / `jsonl:-` — JSON lines appended to FILE / written to stdout
 *
 * The database drivers are imported only when their sink is opened, so nothing else (the
 * daemon on the device) ever loads them.
 */
import { GatewayError } from "../../errors.js";
import { JsonlSink } from "./jsonl.js";
import type { ReadingSink, ReadingStore } from "./types.js";

export type { GapsQuery, HistoryQuery, LatestQuery, ReadingSink, ReadingStore, SeqGap, SeriesSummary, StoredReading, TimeRange } from "./types.js";
export { regionOf, toStoredReading } from "./reading.js";
export { JsonlSink } from "./jsonl.js";

export type SinkSpec = { kind: "sqlite"; file: string } | { kind: "postgres"; url: string } | { kind: "jsonl"; file: string };

const HINT = "write sqlite:FILE, postgres://USER@HOST/DB or jsonl:FILE (jsonl:- for stdout)";

/** Parses a sink spec; returns the problem (naming `flag` and the accepted forms) as a string when it is none. */
export function parseSinkSpec(spec: string, flag = "--sink"): SinkSpec | string {
  if (/^postgres(ql)?:\/\//.test(spec)) return { kind: "postgres", url: spec };
  const m = /^(sqlite|jsonl):(.+)$/.exec(spec);
  if (!m) return `${flag} ${JSON.stringify(spec)}: unknown sink: ${HINT}`;
  return m[1] === "sqlite" ? { kind: "sqlite", file: m[2]! } : { kind: "jsonl", file: m[2]! };
}

/** Opens a sink, creating or migrating the database schema. Rejects with EGW_DB when the database is unusable. */
export async function openSink(spec: SinkSpec): Promise<ReadingSink> {
  switch (spec.kind) {
    case "jsonl":
      return new JsonlSink(spec.file);
    case "sqlite":
      return (await import("./sqlite.js")).SqliteDb.open(spec.file);
    case "postgres":
      return (await import("./postgres.js")).PostgresDb.open(spec.url);
  }
}

/** Opens an existing database for the query commands; JSON lines cannot be queried (EGW_USAGE). */
export async function openStore(spec: SinkSpec, flag = "--db"): Promise<ReadingStore> {
  switch (spec.kind) {
    case "jsonl":
      throw new GatewayError("EGW_USAGE", `${flag}: JSON lines cannot be queried: give sqlite:FILE or postgres://USER@HOST/DB`);
    case "sqlite":
      return (await import("./sqlite.js")).SqliteDb.open(spec.file, { mustExist: true });
    case "postgres":
      return (await import("./postgres.js")).PostgresDb.open(spec.url);
  }
}
