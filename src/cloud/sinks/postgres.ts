/**
 * PostgreSQL sink and store (`pg`, loaded only when used). Several workers on one durable
 * consumer can write to the same database: the primary key `(device, sensor, seq)` and
 * `INSERT … ON CONFLICT DO NOTHING` make every write idempotent, whoever does it.
 *
 * With the TimescaleDB extension available the table becomes a hypertable on `ts`; TimescaleDB
 * requires the partitioning column in every unique index, so there the key is
 * `(device, sensor, seq, ts)` — a redelivered reading carries the same `ts`, so it still
 * conflicts. Without it: a plain table, a BRIN index on `ts` (cheap, fits append-mostly time
 * data, ready for declarative partitioning by `ts`) and `(device, sensor, ts)`.
 */
import type { Pool, PoolConfig } from "pg";
import { GatewayError, errorMessage } from "../../errors.js";
import { gapSql, gapsFromRows, type GapRow } from "./gaps.js";
import type { GapsQuery, HistoryQuery, LatestQuery, ReadingSink, ReadingStore, SeqGap, SeriesSummary, StoredReading } from "./types.js";

const COLUMNS_DEF = `
  device text NOT NULL,
  sensor text NOT NULL,
  seq bigint NOT NULL,
  ts timestamptz NOT NULL,
  type text NOT NULL,
  region text,
  value double precision,
  "values" jsonb,
  unit text,
  units jsonb,
  quality text NOT NULL,
  subject text NOT NULL,
  stream_seq bigint,
  ingested_at timestamptz NOT NULL DEFAULT now()`;

/** Schema migrations; index i brings the schema to version i + 1. Append, never edit. */
function migrations(timescale: boolean): string[] {
  return [
    timescale
      ? `CREATE TABLE readings (${COLUMNS_DEF}, PRIMARY KEY (device, sensor, seq, ts));
         SELECT create_hypertable('readings', 'ts', if_not_exists => TRUE);
         CREATE INDEX readings_device_sensor_ts ON readings (device, sensor, ts DESC);`
      : `CREATE TABLE readings (${COLUMNS_DEF}, PRIMARY KEY (device, sensor, seq));
         CREATE INDEX readings_device_sensor_ts ON readings (device, sensor, ts DESC);
         CREATE INDEX readings_ts_brin ON readings USING brin (ts);`,
  ];
}

/** ms since epoch out of a timestamptz, exact to the ms. */
const tsMs = (col: string) => `(round(extract(epoch from ${col}) * 1000))::bigint`;
const SELECT = `device, sensor, seq, ${tsMs("ts")} AS ts, type, region, value, "values", unit, units, quality, subject, stream_seq`;

interface Row {
  device: string;
  sensor: string;
  seq: string;
  ts: string;
  type: string;
  region: string | null;
  value: number | null;
  values: Record<string, number> | null;
  unit: string | null;
  units: Record<string, string> | null;
  quality: string;
  subject: string;
  stream_seq: string | null;
}

function fromRow(r: Row): StoredReading {
  return {
    device: r.device,
    sensor: r.sensor,
    seq: Number(r.seq),
    type: r.type,
    ...(r.region !== null ? { region: r.region } : {}),
    ts: Number(r.ts),
    ...(r.value !== null ? { value: r.value } : {}),
    ...(r.values !== null ? { values: r.values } : {}),
    ...(r.unit !== null ? { unit: r.unit } : {}),
    ...(r.units !== null ? { units: r.units } : {}),
    quality: r.quality,
    subject: r.subject,
    ...(r.stream_seq !== null ? { streamSeq: Number(r.stream_seq) } : {}),
  };
}

/** `postgres://user:secret@host/db` → `postgres://user@host/db` for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "postgres://…";
  }
}

export class PostgresDb implements ReadingSink, ReadingStore {
  readonly kind = "postgres";
  readonly target: string;
  /** Whether the table is a TimescaleDB hypertable. */
  readonly hypertable: boolean;
  private readonly pool: Pool;
  private closed = false;

  private constructor(url: string, pool: Pool, hypertable: boolean) {
    this.target = redactUrl(url);
    this.pool = pool;
    this.hypertable = hypertable;
  }

  /**
   * Connects, creates or migrates the schema. Rejects with EGW_DB naming the server and the fix.
   * Later connection losses are not fatal: each `write` takes a pooled connection, which
   * reconnects once the server is back.
   */
  static async open(url: string, opts: { poolSize?: number } = {}): Promise<PostgresDb> {
    let pg: typeof import("pg");
    try {
      pg = (await import("pg")).default as unknown as typeof import("pg");
    } catch (cause) {
      throw new GatewayError("EGW_DB", `the PostgreSQL sink needs the pg package: run \`npm install pg\` (${errorMessage(cause)})`, { cause });
    }
    const config: PoolConfig = { connectionString: url, max: opts.poolSize ?? 2, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000 };
    const pool = new pg.Pool(config);
    // An idle pooled client whose server went away emits 'error'; the next query reconnects.
    pool.on("error", () => undefined);
    try {
      const hypertable = await migrate(pool);
      return new PostgresDb(url, pool, hypertable);
    } catch (cause) {
      await pool.end().catch(() => undefined);
      throw new GatewayError("EGW_DB", `cannot use PostgreSQL at ${redactUrl(url)}: ${errorMessage(cause)} (check the URL, that the server runs and that the user may create tables)`, { cause });
    }
  }

  async write(batch: readonly StoredReading[]): Promise<number> {
    if (batch.length === 0) return 0;
    const cols = {
      device: [] as string[], sensor: [] as string[], seq: [] as number[], ts: [] as number[], type: [] as string[],
      region: [] as (string | null)[], value: [] as (number | null)[], values: [] as (string | null)[], unit: [] as (string | null)[],
      units: [] as (string | null)[], quality: [] as string[], subject: [] as string[], streamSeq: [] as (number | null)[],
    };
    for (const r of batch) {
      cols.device.push(r.device);
      cols.sensor.push(r.sensor);
      cols.seq.push(r.seq);
      cols.ts.push(r.ts);
      cols.type.push(r.type);
      cols.region.push(r.region ?? null);
      cols.value.push(r.value ?? null);
      cols.values.push(r.values ? JSON.stringify(r.values) : null);
      cols.unit.push(r.unit ?? null);
      cols.units.push(r.units ? JSON.stringify(r.units) : null);
      cols.quality.push(r.quality);
      cols.subject.push(r.subject);
      cols.streamSeq.push(r.streamSeq ?? null);
    }
    // One statement is one transaction (autocommit): the whole batch or nothing.
    const res = await this.pool.query(
      `INSERT INTO readings (device, sensor, seq, ts, type, region, value, "values", unit, units, quality, subject, stream_seq)
       SELECT d, s, q, to_timestamp(t / 1000.0), ty, rg, v, vs::jsonb, u, us::jsonb, ql, sj, ss
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::double precision[], $5::text[], $6::text[], $7::double precision[],
                   $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[])
            AS x(d, s, q, t, ty, rg, v, vs, u, us, ql, sj, ss)
       ON CONFLICT DO NOTHING`,
      [cols.device, cols.sensor, cols.seq, cols.ts, cols.type, cols.region, cols.value, cols.values, cols.unit, cols.units, cols.quality, cols.subject, cols.streamSeq],
    );
    return res.rowCount ?? 0;
  }

  isDataError(err: unknown): boolean {
    const code = (err as { code?: unknown }).code;
    // SQLSTATE class 22 (data exception) and 23 (integrity constraint); everything else —
    // connection refused/reset, 57P01 admin shutdown, 08xxx — means "database unavailable".
    return typeof code === "string" && /^2[23][0-9A-Z]{3}$/.test(code);
  }

  async history(q: HistoryQuery): Promise<StoredReading[]> {
    const res = await this.pool.query<Row>(
      `SELECT ${SELECT} FROM readings WHERE device = $1 AND sensor = $2 AND ts >= to_timestamp($3 / 1000.0) AND ts < to_timestamp($4 / 1000.0) ORDER BY ts, seq LIMIT $5`,
      [q.device, q.sensor, q.since ?? 0, q.until ?? 253402300799000, q.limit ?? 10_000],
    );
    return res.rows.map(fromRow);
  }

  async latest(q: LatestQuery): Promise<StoredReading[]> {
    const where: string[] = [];
    const params: string[] = [];
    for (const k of ["region", "type", "device"] as const) {
      if (q[k] !== undefined) {
        params.push(q[k]);
        where.push(`${k} = $${params.length}`);
      }
    }
    const res = await this.pool.query<Row>(
      `SELECT * FROM (SELECT DISTINCT ON (device, sensor) ${SELECT} FROM readings ORDER BY device, sensor, seq DESC) l` +
        `${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY device, sensor`,
      params,
    );
    return res.rows.map(fromRow);
  }

  async gaps(q: GapsQuery): Promise<{ gaps: SeqGap[]; series: SeriesSummary[] }> {
    const plain = gapSql(tsMs, (i) => `$${i}`, q);
    const res = await this.pool.query<{ device: string; sensor: string; seq: string; ts: string; prev_seq: string | null; prev_ts: string | null }>(plain.sql, plain.params);
    const rows = res.rows.map(
      (r): GapRow => ({ device: r.device, sensor: r.sensor, seq: Number(r.seq), ts: Number(r.ts), prevSeq: r.prev_seq === null ? null : Number(r.prev_seq), prevTs: r.prev_ts === null ? null : Number(r.prev_ts) }),
    );
    const params: unknown[] = [];
    const where: string[] = [];
    if (q.device !== undefined) {
      params.push(q.device);
      where.push(`device = $${params.length}`);
    }
    if (q.since !== undefined) {
      params.push(q.since);
      where.push(`ts >= to_timestamp($${params.length} / 1000.0)`);
    }
    const s = await this.pool.query<{ device: string; sensor: string; stored: string; min_seq: string; max_seq: string; last_ts: string }>(
      `SELECT device, sensor, count(*) AS stored, min(seq) AS min_seq, max(seq) AS max_seq, ${tsMs("max(ts)")} AS last_ts FROM readings${where.length ? ` WHERE ${where.join(" AND ")}` : ""} GROUP BY device, sensor ORDER BY device, sensor`,
      params,
    );
    const series = s.rows.map((r) => ({ device: r.device, sensor: r.sensor, stored: Number(r.stored), minSeq: Number(r.min_seq), maxSeq: Number(r.max_seq), lastTs: Number(r.last_ts) }));
    return { gaps: gapsFromRows(rows, q.since === undefined), series };
  }

  /** Readings stored (for tests, the bench and the demo). */
  async count(): Promise<number> {
    return Number((await this.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

/** Creates or migrates the schema under an advisory lock (workers starting together); returns whether it is a hypertable. */
async function migrate(pool: Pool): Promise<boolean> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext('edge-gateway readings schema'))");
    await client.query("CREATE TABLE IF NOT EXISTS egw_schema (version integer NOT NULL, hypertable boolean NOT NULL DEFAULT false)");
    const row = (await client.query<{ version: number; hypertable: boolean }>("SELECT version, hypertable FROM egw_schema")).rows[0];
    let hypertable = row?.hypertable ?? false;
    if (!row) {
      const ext = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'");
      if (ext.rowCount) {
        await client.query("CREATE EXTENSION IF NOT EXISTS timescaledb");
        hypertable = true;
      }
    }
    const all = migrations(hypertable);
    const current = row?.version ?? 0;
    if (current > all.length) throw new Error(`schema version ${current} is newer than this edge-gateway knows (${all.length}): upgrade edge-gateway`);
    for (let v = current; v < all.length; v++) await client.query(all[v]!);
    if (row) await client.query("UPDATE egw_schema SET version = $1", [all.length]);
    else await client.query("INSERT INTO egw_schema (version, hypertable) VALUES ($1, $2)", [all.length, hypertable]);
    await client.query("COMMIT");
    return hypertable;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
