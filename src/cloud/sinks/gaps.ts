/**
 * The completeness audit shared by the database stores: both run the same window query
 * (`LAG(seq) OVER (PARTITION BY device, sensor ORDER BY seq)`) and hand its rows here.
 */
import type { SeqGap } from "./types.js";

/** A stored reading whose predecessor in seq order is not seq - 1. */
export interface GapRow {
  device: string;
  sensor: string;
  seq: number;
  ts: number;
  /** null for the first stored reading of the sensor. */
  prevSeq: number | null;
  prevTs: number | null;
}

/**
 * Gaps from the rows of the window query: `prevSeq+1 .. seq-1`, and for the first stored
 * reading `1 .. seq-1` (seqs start at 1) unless `leading` is false.
 */
export function gapsFromRows(rows: readonly GapRow[], leading: boolean): SeqGap[] {
  const gaps: SeqGap[] = [];
  for (const r of rows) {
    if (r.prevSeq === null) {
      if (leading && r.seq > 1) gaps.push({ device: r.device, sensor: r.sensor, from: 1, to: r.seq - 1, beforeTs: r.ts });
    } else if (r.seq - r.prevSeq > 1) {
      gaps.push({ device: r.device, sensor: r.sensor, from: r.prevSeq + 1, to: r.seq - 1, afterTs: r.prevTs ?? undefined, beforeTs: r.ts });
    }
  }
  return gaps.sort((a, b) => a.device.localeCompare(b.device) || a.sensor.localeCompare(b.sensor) || a.from - b.from);
}

/** The window query's text, with `?`-style or `$n`-style placeholders produced by `p`. */
export function gapSql(tsExpr: (col: string) => string, p: (i: number) => string, q: { device?: string; since?: number }): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const where: string[] = [];
  if (q.device !== undefined) {
    params.push(q.device);
    where.push(`device = ${p(params.length)}`);
  }
  let outer = "(prev_seq IS NULL AND seq > 1) OR seq - prev_seq > 1";
  if (q.since !== undefined) {
    params.push(q.since);
    outer = `(${outer}) AND ${tsExpr("ts")} >= ${p(params.length)}`;
  }
  const sql =
    `SELECT device, sensor, seq, ${tsExpr("ts")} AS ts, prev_seq, ${tsExpr("prev_ts")} AS prev_ts FROM (` +
    `SELECT device, sensor, seq, ts, LAG(seq) OVER w AS prev_seq, LAG(ts) OVER w AS prev_ts FROM readings` +
    `${where.length ? ` WHERE ${where.join(" AND ")}` : ""} WINDOW w AS (PARTITION BY device, sensor ORDER BY seq)) g WHERE ${outer}`;
  return { sql, params };
}
