/**
 * The operator's queries on the ingest database: `cloud history`, `cloud latest`, `cloud gaps`.
 */
import { auditGaps } from "../cloud/audit.js";
import { latestTable, spanText, table, unitText, valueText } from "../cloud/format.js";
import { HUB_DEFAULTS } from "../cloud/hub.js";
import type { ConsumerReport } from "../cloud/ingest.js";
import { openStore, parseSinkSpec, type ReadingStore, type StoredReading } from "../cloud/sinks/index.js";
import { parseDuration } from "../config/units.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { GatewayError, errorMessage } from "../errors.js";
import { connectServer, serverFlags } from "./connect.js";
import { EXIT, parse, reportError, UsageError, type Command } from "./command.js";

const DB_HELP = `  --db DB              sqlite:FILE or postgres://USER@HOST/DB, as given to \`cloud ingest --sink\`
                       (default $EDGE_GATEWAY_DB)`;

/** `1h` → now - 1 h; an ISO 8601 date/time → that instant; ms since epoch → itself. */
export function timeFlag(flag: string, v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/i.test(v.trim())) return now - parseDuration(v.trim())!;
  if (/^\d{12,}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`${flag} ${v}: write a duration ago (30m, 1h, 7d) or a date/time (2026-12-01T08:00Z)`);
  return t;
}

async function withStore<T>(dbFlag: string | undefined, f: (store: ReadingStore) => Promise<T>): Promise<T> {
  const db = dbFlag ?? process.env.EDGE_GATEWAY_DB;
  if (!db) throw new UsageError("--db is required (or set EDGE_GATEWAY_DB): sqlite:FILE or postgres://USER@HOST/DB");
  const spec = parseSinkSpec(db, "--db");
  if (typeof spec === "string") throw new UsageError(spec);
  if (spec.kind === "jsonl") throw new UsageError("--db: JSON lines cannot be queried: give sqlite:FILE or postgres://USER@HOST/DB");
  const store = await openStore(spec);
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

function csvCell(v: string | number | undefined): string {
  const s = v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function publicReading(r: StoredReading): StoredReading {
  const { raw: _raw, ...rest } = r;
  void _raw;
  return rest;
}

const historyUsage = `Usage: edge-gateway cloud history DEVICE SENSOR --db DB [--since 1h] [--until TIME] [--json | --csv]

The readings of one sensor stored by \`cloud ingest\`, oldest first.

${DB_HELP}
  --since TIME         from TIME: a duration ago (30m, 1h, 7d) or a date/time (default 1h)
  --until TIME         up to (not including) TIME (default now)
  --limit N            at most N readings (default 10000)
  --json | --csv       machine-readable output instead of a table`;

export const history: Command = {
  usage: historyUsage,
  async run(argv, io) {
    try {
      const { values, positionals } = parse(argv, { db: { type: "string" }, since: { type: "string" }, until: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, csv: { type: "boolean" } }, true);
      if (values.help) {
        io.out(historyUsage);
        return EXIT.ok;
      }
      const [device, sensor, extra] = positionals;
      if (!device || !sensor) throw new UsageError("give DEVICE and SENSOR, e.g. `edge-gateway cloud history pi-0042 kitchen-temp --since 1h`");
      if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
      if (values.json && values.csv) throw new UsageError("give --json or --csv, not both");
      const since = timeFlag("--since", values.since ?? "1h");
      const until = timeFlag("--until", values.until);
      const limit = values.limit === undefined ? 10_000 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError("--limit must be a whole number ≥ 1");
      const rows = await withStore(values.db, (s) => s.history({ device, sensor, since, until, limit }));
      if (values.json) io.out(JSON.stringify(rows.map(publicReading)));
      else if (values.csv) {
        io.out(["device,sensor,seq,ts,time,value,values,unit,units,quality", ...rows.map((r) =>
          [r.device, r.sensor, r.seq, r.ts, iso(r.ts), r.value, r.values ? JSON.stringify(r.values) : undefined, r.unit, r.units ? JSON.stringify(r.units) : undefined, r.quality].map(csvCell).join(","))].join("\n"));
      } else if (rows.length === 0) io.out(`no readings of ${device} ${sensor} between ${iso(since!)} and ${until === undefined ? "now" : iso(until)}`);
      else io.out(table([["TIME", "SEQ", "VALUE", "UNIT", "QUALITY"], ...rows.map((r) => [iso(r.ts), String(r.seq), valueText(r), unitText(r), r.quality])]));
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, historyUsage);
    }
  },
};

const latestUsage = `Usage: edge-gateway cloud latest --db DB [--region R] [--type T] [--device D] [--json]

The last reading (highest seq) of every sensor in the ingest database, with its age.

${DB_HELP}
  --region R, --type T, --device D   only sensors whose last reading has this region / type / device
  --json               machine-readable output`;

export const latest: Command = {
  usage: latestUsage,
  async run(argv, io) {
    try {
      const { values, positionals } = parse(argv, { db: { type: "string" }, region: { type: "string" }, type: { type: "string" }, device: { type: "string" }, json: { type: "boolean" } }, true);
      if (values.help) {
        io.out(latestUsage);
        return EXIT.ok;
      }
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
      const rows = await withStore(values.db, (s) => s.latest({ region: values.region, type: values.type, device: values.device }));
      const now = Date.now();
      if (values.json) io.out(JSON.stringify(rows.map((r) => ({ ...publicReading(r), ageMs: now - r.ts }))));
      else io.out(latestTable(rows, now));
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, latestUsage);
    }
  },
};

const gapsUsage = `Usage: edge-gateway cloud gaps --db DB [--device D] [--since TIME] [--queue NAME --server URL] [--json]

The completeness audit: per device and sensor, the seqs missing from the ingest database
between seq 1 and the highest stored seq, with the time span between the stored neighbours,
and totals. Readings after a sensor's highest stored seq cannot be seen here.

  missing            not in the database, and — when the consumer has nothing pending — not
                     waiting in the hub stream for it either: never reached the hub (still on
                     the device's leaf: see \`cloud devices\`, or lost), removed from the hub
                     stream before it was ingested, or given up after max_deliver
  not yet ingested   the ingest consumer's pending + ack pending readings (with --queue): while
                     > 0 the audit is provisional; those readings may fill gaps

${DB_HELP}
  --device D           one device
  --since TIME         only gaps that end at or after TIME (a duration ago or a date/time); the
                       gap before a sensor's first stored reading is then not reported
  --queue NAME         the ingest consumer, to count readings not yet ingested (needs --server)
  --stream NAME        hub stream (default TELEMETRY)
  --json               machine-readable output

Common options: --server URL (default $NATS_URL or nats://127.0.0.1:4222), --creds FILE`;

export const gaps: Command = {
  usage: gapsUsage,
  async run(argv, io) {
    try {
      const { values, positionals } = parse(argv, { ...serverFlags, db: { type: "string" }, device: { type: "string" }, since: { type: "string" }, queue: { type: "string" }, stream: { type: "string" }, json: { type: "boolean" } }, true);
      if (values.help) {
        io.out(gapsUsage);
        return EXIT.ok;
      }
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
      const since = timeFlag("--since", values.since);
      let consumer: ConsumerReport | undefined;
      if (values.queue !== undefined) {
        const nc = await connectServer(values.server, values.creds);
        try {
          const stream = values.stream ?? HUB_DEFAULTS.stream;
          const info = await (await jetstreamManager(nc)).consumers.info(stream, values.queue).catch((err: unknown) => {
            throw new GatewayError("EGW_STREAM", `cannot read consumer ${values.queue} on stream ${stream}: ${errorMessage(err)} (is --queue the name \`cloud ingest\` uses?)`, { cause: err });
          });
          consumer = { stream, consumer: values.queue, numPending: info.num_pending, numAckPending: info.num_ack_pending, numRedelivered: info.num_redelivered, numWaiting: info.num_waiting };
        } finally {
          await nc.close();
        }
      }
      const audit = await withStore(values.db, (s) => auditGaps(s, { device: values.device, since }, consumer));
      if (values.json) {
        io.out(JSON.stringify(audit));
        return EXIT.ok;
      }
      const t = audit.totals;
      if (audit.gaps.length > 0) {
        io.out(table([
          ["DEVICE", "SENSOR", "MISSING SEQ", "COUNT", "AFTER (last stored before)", "BEFORE (first stored after)", "SPAN"],
          ...audit.gaps.map((g) => [g.device, g.sensor, g.from === g.to ? String(g.from) : `${g.from}..${g.to}`, String(g.count), g.afterTs === undefined ? "(before first stored)" : iso(g.afterTs), iso(g.beforeTs), g.afterTs === undefined ? "" : spanText(g.beforeTs - g.afterTs)]),
        ]));
        io.out("");
      }
      io.out(`totals: ${t.sensors} sensors, ${t.stored} readings stored, ${t.missing} missing in ${t.gaps} gaps (${t.sensorsWithGaps} sensors with gaps)`);
      if (audit.consumer) {
        const c = audit.consumer;
        io.out(
          c.notYetIngested > 0
            ? `consumer ${c.stream}/${c.consumer}: ${c.notYetIngested} readings not yet ingested (pending ${c.numPending}, ack pending ${c.numAckPending}): provisional, they may fill gaps; run again when 0`
            : `consumer ${c.stream}/${c.consumer}: 0 readings not yet ingested: the gaps above are missing, not waiting in the hub stream`,
        );
      } else io.out("not yet ingested: unknown (give --queue NAME --server URL to tell missing from not yet ingested)");
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, gapsUsage);
    }
  },
};
