/**
 * SQLite sink and store (better-sqlite3, loaded only when used: the daemon never loads it).
 *
 * One file, WAL journal, `synchronous=FULL`: a transaction is on disk when it commits, so a
 * reading acknowledged to JetStream after the commit survives a power cut. Several processes
 * may open the file (busy_timeout waits for the writer lock), but SQLite has one writer at a
 * time: for several workers sharing the load use PostgreSQL.
 */
import type BetterSqlite3 from "better-sqlite3";
import { GatewayError, errorMessage } from "../../errors.js";
import { gapSql, gapsFromRows, type GapRow } from "./gaps.js";
import type { GapsQuery, HistoryQuery, LatestQuery, ReadingSink, ReadingStore, SeqGap, SeriesSummary, StoredReading } from "./types.js";

/** Schema migrations; index i brings the schema to version i + 1. Append, never edit. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE readings (
     device TEXT NOT NULL,
     sensor TEXT NOT NULL,
     seq INTEGER NOT NULL,
     ts INTEGER NOT NULL,            -- ms since epoch
     type TEXT NOT NULL,
     region TEXT,
     value REAL,                     -- single-valued readings
     "values" TEXT,                  -- multi-valued readings: JSON object {name: number}
     unit TEXT,
     units TEXT,                     -- JSON object {name: unit}
     quality TEXT NOT NULL,
     subject TEXT NOT NULL,
     stream_seq INTEGER,
     ingested_at INTEGER NOT NULL,   -- ms since epoch
     PRIMARY KEY (device, sensor, seq)
   ) WITHOUT ROWID;
   CREATE INDEX readings_device_sensor_ts ON readings (device, sensor, ts);
   CREATE INDEX readings_ts ON readings (ts);`,
];

interface Row {
  device: string;
  sensor: string;
  seq: number;
  ts: number;
  type: string;
  region: string | null;
  value: number | null;
  values: string | null;
  unit: string | null;
  units: string | null;
  quality: string;
  subject: string;
  stream_seq: number | null;
}

function fromRow(r: Row): StoredReading {
  return {
    device: r.device,
    sensor: r.sensor,
    seq: r.seq,
    type: r.type,
    ...(r.region !== null ? { region: r.region } : {}),
    ts: r.ts,
    ...(r.value !== null ? { value: r.value } : {}),
    ...(r.values !== null ? { values: JSON.parse(r.values) as Record<string, number> } : {}),
    ...(r.unit !== null ? { unit: r.unit } : {}),
    ...(r.units !== null ? { units: JSON.parse(r.units) as Record<string, string> } : {}),
    quality: r.quality,
    subject: r.subject,
    ...(r.stream_seq !== null ? { streamSeq: r.stream_seq } : {}),
  };
}

const COLUMNS = `device, sensor, seq, ts, type, region, value, "values", unit, units, quality, subject, stream_seq`;

async function loadDriver(): Promise<typeof BetterSqlite3> {
  try {
    return (await import("better-sqlite3")).default;
  } catch (cause) {
    throw new GatewayError("EGW_DB", `the SQLite sink needs the better-sqlite3 package, which is not installed or not built for this platform (${errorMessage(cause)}): run \`npm install better-sqlite3@12\` next to edge-gateway, or use --sink postgres://…`, { cause });
  }
}

/** Opens (creating and migrating) the SQLite database at `file`. */
export class SqliteDb implements ReadingSink, ReadingStore {
  readonly kind = "sqlite";
  readonly target: string;
  private readonly db: BetterSqlite3.Database;
  private readonly insert: BetterSqlite3.Statement;
  private readonly insertBatch: (batch: readonly StoredReading[]) => number;
  private closed = false;

  private constructor(file: string, db: BetterSqlite3.Database) {
    this.target = file;
    this.db = db;
    this.insert = db.prepare(`INSERT INTO readings (${COLUMNS}, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (device, sensor, seq) DO NOTHING`);
    this.insertBatch = db.transaction((batch: readonly StoredReading[]) => {
      const now = Date.now();
      let added = 0;
      for (const r of batch) {
        added += this.insert.run(
          r.device, r.sensor, r.seq, r.ts, r.type, r.region ?? null, r.value ?? null,
          r.values ? JSON.stringify(r.values) : null, r.unit ?? null, r.units ? JSON.stringify(r.units) : null,
          r.quality, r.subject, r.streamSeq ?? null, now,
        ).changes;
      }
      return added;
    });
  }

  /** Opens `file`, creates or migrates the schema. Rejects with EGW_DB naming the file and the fix. */
  static async open(file: string, opts: { mustExist?: boolean } = {}): Promise<SqliteDb> {
    const Database = await loadDriver();
    let db: BetterSqlite3.Database | undefined;
    try {
      db = new Database(file, { fileMustExist: opts.mustExist ?? false });
      // better-sqlite3 is synchronous: a locked database blocks the event loop this long per attempt.
      db.pragma("busy_timeout = 1000");
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      migrate(db);
      return new SqliteDb(file, db);
    } catch (cause) {
      db?.close();
      throw new GatewayError("EGW_DB", `cannot open SQLite database ${file}: ${errorMessage(cause)}${opts.mustExist ? " (is it the file `cloud ingest --sink sqlite:FILE` writes?)" : " (check that the directory exists and is writable)"}`, { cause });
    }
  }

  write(batch: readonly StoredReading[]): Promise<number> {
    try {
      return Promise.resolve(this.insertBatch(batch));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  isDataError(err: unknown): boolean {
    const code = (err as { code?: unknown }).code;
    // Busy, locked, I/O, full disk, read-only: the database, not the reading; retry.
    return typeof code === "string" && /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(code);
  }

  history(q: HistoryQuery): Promise<StoredReading[]> {
    const rows = this.db
      .prepare(`SELECT ${COLUMNS} FROM readings WHERE device = ? AND sensor = ? AND ts >= ? AND ts < ? ORDER BY ts, seq LIMIT ?`)
      .all(q.device, q.sensor, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, q.limit ?? 10_000) as Row[];
    return Promise.resolve(rows.map(fromRow));
  }

  latest(q: LatestQuery): Promise<StoredReading[]> {
    const where: string[] = [];
    const params: string[] = [];
    for (const k of ["region", "type", "device"] as const) {
      if (q[k] !== undefined) {
        where.push(`${k} = ?`);
        params.push(q[k]);
      }
    }
    // The highest seq per sensor through the primary key; the filter applies to that reading.
    const rows = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM readings r WHERE seq = (SELECT max(seq) FROM readings m WHERE m.device = r.device AND m.sensor = r.sensor)` +
          `${where.length ? ` AND ${where.join(" AND ")}` : ""} ORDER BY device, sensor`,
      )
      .all(...params) as Row[];
    return Promise.resolve(rows.map(fromRow));
  }

  gaps(q: GapsQuery): Promise<{ gaps: SeqGap[]; series: SeriesSummary[] }> {
    const g = gapSql((c) => c, () => "?", q);
    const rows = (this.db.prepare(g.sql).all(...g.params) as { device: string; sensor: string; seq: number; ts: number; prev_seq: number | null; prev_ts: number | null }[]).map(
      (r): GapRow => ({ device: r.device, sensor: r.sensor, seq: r.seq, ts: r.ts, prevSeq: r.prev_seq, prevTs: r.prev_ts }),
    );
    const params: unknown[] = [];
    const where: string[] = [];
    if (q.device !== undefined) {
      where.push("device = ?");
      params.push(q.device);
    }
    if (q.since !== undefined) {
      where.push("ts >= ?");
      params.push(q.since);
    }
    const series = this.db
      .prepare(`SELECT device, sensor, count(*) AS stored, min(seq) AS minSeq, max(seq) AS maxSeq, max(ts) AS lastTs FROM readings${where.length ? ` WHERE ${where.join(" AND ")}` : ""} GROUP BY device, sensor ORDER BY device, sensor`)
      .all(...params) as SeriesSummary[];
    return Promise.resolve({ gaps: gapsFromRows(rows, q.since === undefined), series });
  }

  /** Readings stored (for tests and the demo). */
  count(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM readings").get() as { n: number }).n;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}

function migrate(db: BetterSqlite3.Database): void {
  db.exec("CREATE TABLE IF NOT EXISTS egw_schema (version INTEGER NOT NULL)");
  // IMMEDIATE: two workers starting together migrate one after the other.
  db.transaction(() => {
    const row = db.prepare("SELECT version FROM egw_schema").get() as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > MIGRATIONS.length) {
      throw new Error(`schema version ${current} is newer than this edge-gateway knows (${MIGRATIONS.length}): upgrade edge-gateway`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    if (row) db.prepare("UPDATE egw_schema SET version = ?").run(MIGRATIONS.length);
    else db.prepare("INSERT INTO egw_schema (version) VALUES (?)").run(MIGRATIONS.length);
  }).immediate();
}
