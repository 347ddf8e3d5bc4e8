/**
 * Contracts of the ingest sinks (types only, no implementation): where `cloud ingest` writes
 * readings (`ReadingSink`) and what the query commands ask of a database (`ReadingStore`).
 */

/** One reading as a sink stores it: the body fields of DESIGN A2 plus where it came from. */
export interface StoredReading {
  device: string;
  sensor: string;
  /** Per-sensor sequence number: with `device` and `sensor` the reading's identity. */
  seq: number;
  type: string;
  /** 3rd subject token (`sensors.<type>.<region>.…`); undefined when the subject has no region. */
  region?: string;
  /** ms since epoch, when the sample was read. */
  ts: number;
  /** Single-valued readings. */
  value?: number;
  /** Multi-valued readings (`values: {name: number}`). */
  values?: Record<string, number>;
  unit?: string;
  units?: Record<string, string>;
  quality: string;
  subject: string;
  /** Hub stream sequence (undefined in live mode). */
  streamSeq?: number;
  /** The message body as received; the JSON-lines sink writes it, databases ignore it. */
  raw?: unknown;
}

/**
 * Where an ingest worker writes readings. `write` is one transaction: when it resolves every
 * reading of the batch is durably stored (committed), when it rejects none is acknowledged.
 * Writing a reading that is already stored (same device, sensor, seq) changes nothing, so
 * redeliveries and replays store nothing twice.
 */
export interface ReadingSink {
  /** `sqlite`, `postgres` or `jsonl`. */
  readonly kind: string;
  /** Human-readable target without secrets (file name, host/db). */
  readonly target: string;
  /** Stores the batch in one transaction; resolves once committed. Returns how many were new. */
  write(batch: readonly StoredReading[]): Promise<number>;
  /**
   * Whether `err` (thrown by `write`) is about the data rather than the database being
   * unreachable: data errors are nak'ed (redelivered up to max_deliver); any other error is
   * retried with the same batch until the database is back (nothing acked meanwhile).
   */
  isDataError(err: unknown): boolean;
  /** Safe to call twice. */
  close(): Promise<void>;
}

/** Time window for queries, ms since epoch. */
export interface TimeRange {
  since?: number;
  until?: number;
}

export interface HistoryQuery extends TimeRange {
  device: string;
  sensor: string;
  /** At most this many readings, the oldest in the range first. Default 10,000. */
  limit?: number;
}

export interface LatestQuery {
  region?: string;
  type?: string;
  device?: string;
}

export interface GapsQuery {
  device?: string;
  /** Only gaps whose upper neighbour was read at or after `since` (the leading gap is then left out). */
  since?: number;
}

/** Per (device, sensor) what the table holds. */
export interface SeriesSummary {
  device: string;
  sensor: string;
  stored: number;
  minSeq: number;
  maxSeq: number;
  lastTs: number;
}

/** A run of missing seqs `from..to` (inclusive) between two stored readings. */
export interface SeqGap {
  device: string;
  sensor: string;
  from: number;
  to: number;
  /** ts of the stored reading before the gap; undefined for a gap before the first stored reading. */
  afterTs?: number;
  /** ts of the stored reading after the gap. */
  beforeTs: number;
}

/** Read side of a database sink, used by `cloud history | latest | gaps`. */
export interface ReadingStore {
  readonly kind: string;
  readonly target: string;
  /** Readings of one sensor in the range, oldest first. */
  history(q: HistoryQuery): Promise<StoredReading[]>;
  /** The reading with the highest seq of every sensor matching the filter, ordered by device, sensor. */
  latest(q: LatestQuery): Promise<StoredReading[]>;
  /** Missing seq runs (seq 1 up to the highest stored), ordered by device, sensor, from. */
  gaps(q: GapsQuery): Promise<{ gaps: SeqGap[]; series: SeriesSummary[] }>;
  close(): Promise<void>;
}
