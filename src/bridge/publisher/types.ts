/**
 * The publisher's contracts: options, counters, the per-reading "stored" notification, and the
 * queue entry the parts pass between them. Types only.
 */
import type { Reading } from "../../drivers/types.js";
import type { Logger } from "../../logger.js";
import type { SeqStore } from "../seq-store.js";
import type { WireMessage } from "./message.js";

export interface PublisherOptions {
  deviceId: string;
  region: string;
  stream: string;
  maxBytes: number;
  maxAgeMs: number;
  duplicateWindowMs: number;
  /** Readings held in memory (queued and awaiting a resend); beyond it the oldest of the sensor holding the most is dropped. */
  queueSize: number;
  /** Publishes awaiting their PubAck at once. */
  maxInFlight: number;
  /**
   * How long to wait for a PubAck before everything in flight is sent again (same msg ids).
   * Default 2 s when the leaf is on loopback (it answers in well under a millisecond; a silent
   * leaf is dead or stopped), 5 s otherwise.
   */
  ackTimeoutMs?: number;
  /**
   * Subject prefix of the PubAck inbox (`<prefix>.<nuid>.*`, one subscription). Default: the
   * connection's `inboxPrefix`, else `_INBOX`.
   */
  inboxPrefix?: string;
  /**
   * Per-sensor cap for readings a sensor may hand in per second (token bucket, burst = 1 s of
   * it). Readings over it are dropped and counted (`rateLimited`). Default: no cap. Meant for
   * push drivers (GPIO inputs, MQTT) that a chatty device could flood.
   */
  maxRatePerSensor?: number;
  /** Called at most every `lossReportMs` with the per-sensor losses since the last call (for `events.dropped`). */
  onLoss?: (report: LossReport) => void;
  /** Default 10 s. */
  lossReportMs?: number;
  seqs: SeqStore;
  logger: Logger;
}

export interface PublisherStats {
  /** Readings handed to `accept`. */
  accepted: number;
  /** Readings the stream acknowledged (including duplicates of a retried publish). */
  published: number;
  /** PubAcks on a retry that said the stream already had this msg id (the earlier attempt was stored). */
  duplicates: number;
  /** Readings dropped: the queue was full (oldest of the sensor holding most), or accepted after close. */
  dropped: number;
  /** Readings dropped by the per-sensor rate cap. */
  rateLimited: number;
  /** Publish attempts sent again (after a disconnect, an ack timeout or an unavailable stream). */
  retries: number;
  /** Readings the stream refused outright (e.g. too large): not stored, not retried. */
  rejected: number;
  /**
   * PubAcks saying "duplicate" on a reading's first attempt: its msg id was already used by
   * another reading. The reading was sent again under a fresh seq (not lost); should stay 0.
   */
  collisions: number;
  /** Readings waiting (not in flight). */
  queued: number;
  inFlight: number;
}

/** Per sensor: what was not stored, and why. */
export interface SensorLoss {
  dropped: number;
  rateLimited: number;
  rejected: number;
  collisions: number;
}

/** Losses since the previous report, per sensor (only sensors with a loss). */
export interface LossReport {
  sinceMs: number;
  sensors: Record<string, SensorLoss>;
}

/**
 * The fate of one accepted reading, told once: `stored` when the leaf stream acknowledged it
 * (also as a duplicate of an earlier attempt), otherwise why it will never be stored.
 */
export type StoredResult =
  | { stored: true; seq: number; duplicate: boolean }
  | { stored: false; reason: "dropped" | "rate-limited" | "rejected" | "closed"; seq?: number };

export type StoredCallback = (result: StoredResult) => void;

/** Where an entry is: waiting in a sensor queue, awaiting a resend, in flight, or finished. */
export type EntryState = "queued" | "resend" | "inflight" | "done";

export interface Entry {
  reading: Reading;
  subject: string;
  /**
   * The reading's seq, taken when it is accepted (from the seq store's durable block), or later
   * when the block was not on disk yet (`lateSeq`). A reading lost from memory leaves its seq
   * unused: a gap a consumer sees.
   */
  seq?: number;
  /** Accepted without a seq (its sensor's block not yet durable, or its floor unknown). */
  lateSeq?: boolean;
  /** The message, built at the first send from `seq`; kept for retries. */
  wire?: WireMessage;
  /** Sends so far. A "duplicate" PubAck on the first is a collision. */
  attempts: number;
  /** Reply token of the PubAck inbox while the entry awaits its ack (0: none). */
  token: number;
  state: EntryState;
  /** performance.now() of the last send. */
  sentAt: number;
  onStored?: StoredCallback;
}

/** The publisher's counters (`PublisherStats` without the gauges). */
export type Counters = Omit<PublisherStats, "queued" | "inFlight">;


