/**
 * Watches the uplink from the leaf's point of view and the leaf's buffer: whether the hub's
 * JetStream domain answers through the leaf, how many readings the leaf stream holds, and —
 * while the hub is reachable — how far the hub's source for this device lags behind.
 */
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { delay } from "../drivers/util.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";

export interface LinkState {
  /** `up` when the hub's JetStream answered through the leaf at the last check. */
  hub: "up" | "down" | "unknown";
  /** When `hub` last changed (ms since epoch). */
  since: number;
  buffer: { messages: number; bytes: number; oldestAgeMs?: number };
  /** Readings of this device the hub stream has not copied yet; undefined while unknown. */
  hubLag?: number;
  /**
   * Age of the oldest reading in the leaf stream that the hub has not copied yet (0 when it has
   * all of them). While the hub is unreachable, counted from the last position it was seen at;
   * undefined until the hub's source has been seen once.
   */
  oldestUnsentAgeMs?: number;
  /** When the state was last refreshed. */
  checkedAt?: number;
}

export interface LinkMonitorOptions {
  deviceId: string;
  hubDomain: string;
  /** Leaf stream, and the hub stream that sources it (same name). */
  stream: string;
  intervalMs?: number;
  logger: Logger;
  onChange?: (state: LinkState, previous: LinkState) => void;
}

export class LinkMonitor {
  state: LinkState = { hub: "unknown", since: Date.now(), buffer: { messages: 0, bytes: 0 } };
  private readonly opts: LinkMonitorOptions;
  private local?: JetStreamManager;
  private hub?: JetStreamManager;
  /** Last leaf stream sequence the hub was known to have copied. */
  private sentThroughSeq?: number;
  /** When the hub last became reachable (ms since epoch). */
  private hubUpSince?: number;

  constructor(opts: LinkMonitorOptions) {
    this.opts = opts;
  }

  /** Checks every interval until `signal` aborts. Resolves, never rejects. */
  async run(nc: NatsConnection, signal: AbortSignal): Promise<void> {
    // checkAPI false: a device that boots offline has no hub to check against yet; the
    // managers must exist anyway so that later checks see the hub come up.
    this.local = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
    this.hub = await jetstreamManager(nc, { domain: this.opts.hubDomain, timeout: 2000, checkAPI: false });
    while (!signal.aborted) {
      await this.check().catch((err) => this.opts.logger.debug({ err: errorMessage(err) }, "link check failed"));
      if (!(await delay(this.opts.intervalMs ?? 5000, signal))) break;
    }
  }

  /** One refresh of the state. */
  async check(): Promise<LinkState> {
    const prev = this.state;
    const next: LinkState = { ...prev, buffer: { ...prev.buffer }, checkedAt: Date.now() };
    let leafSeqs: { first: number; last: number } | undefined;
    try {
      const info = await this.local!.streams.info(this.opts.stream);
      leafSeqs = { first: info.state.first_seq, last: info.state.last_seq };
      const first = info.state.first_ts ? Date.parse(info.state.first_ts) : NaN;
      next.buffer = {
        messages: info.state.messages,
        bytes: info.state.bytes,
        oldestAgeMs: info.state.messages > 0 && Number.isFinite(first) ? Math.max(0, Date.now() - first) : undefined,
      };
    } catch {
      // The stream appears with the first publish; keep the last known figures.
    }
    let hubUp = false;
    try {
      await this.hub!.getAccountInfo();
      hubUp = true;
    } catch {
      hubUp = false;
    }
    // A source's lag is only what it was at its last delivery: after a reconnect it stays at
    // its pre-outage value until the source resumes (10–30 s on 2.9.10). Trust it for the
    // unsent position only once the source was active since the hub came back.
    let lagIsCurrent = false;
    if (hubUp) {
      if (prev.hub !== "up") this.hubUpSince = Date.now();
      try {
        const info = await this.hub!.streams.info(this.opts.stream);
        const api = `$JS.${this.opts.deviceId}.API`;
        const src = (info.sources ?? []).find((s) => (s as { external?: { api?: string } }).external?.api === api);
        next.hubLag = src?.lag;
        // `active`: nanoseconds since the source's last activity (-1 = never).
        const activeMs = src && src.active >= 0 ? src.active / 1e6 : Infinity;
        lagIsCurrent = src !== undefined && activeMs <= Date.now() - (this.hubUpSince ?? 0);
      } catch {
        next.hubLag = undefined;
      }
    } else {
      // While the hub is unreachable its lag is unknown, not what it was before.
      next.hubLag = undefined;
    }
    next.oldestUnsentAgeMs = await this.oldestUnsentAge(leafSeqs, lagIsCurrent ? next.hubLag : undefined).catch(() => undefined);
    const hub = hubUp ? "up" : "down";
    if (hub !== prev.hub) {
      next.hub = hub;
      next.since = Date.now();
    }
    this.state = next;
    this.report(next, prev);
    return next;
  }

  /**
   * The hub source's lag counts the leaf stream's readings it has not copied (every message in
   * the leaf stream matches the source's filter: the leaf refuses other devices' readings), so
   * the hub holds everything through `last - lag`. The oldest unsent reading is the next one.
   */
  private async oldestUnsentAge(leaf: { first: number; last: number } | undefined, hubLag: number | undefined): Promise<number | undefined> {
    if (!leaf) return undefined;
    if (hubLag !== undefined) this.sentThroughSeq = Math.max(0, leaf.last - hubLag);
    if (this.sentThroughSeq === undefined) return undefined;
    if (this.sentThroughSeq >= leaf.last) return 0;
    // Readings the stream's limits removed before they were copied are gone: start at the first kept.
    const seq = Math.max(this.sentThroughSeq + 1, leaf.first);
    const m = await this.local!.streams.getMessage(this.opts.stream, { seq });
    return m ? Math.max(0, Date.now() - m.time.getTime()) : undefined;
  }

  private report(next: LinkState, prev: LinkState): void {
    const log = this.opts.logger;
    const fields = { hub: next.hub, bufferMessages: next.buffer.messages, bufferBytes: next.buffer.bytes, oldestAgeMs: next.buffer.oldestAgeMs, hubLag: next.hubLag };
    let changed = false;
    if (next.hub !== prev.hub) {
      changed = true;
      if (next.hub === "up") log.info(fields, "uplink up: the hub is reachable through the leaf");
      else log.warn(fields, "uplink down: readings are kept in the leaf stream until it returns");
    } else if ((prev.hubLag ?? 0) > 0 && next.hubLag === 0) {
      changed = true;
      log.info(fields, "hub caught up with this device's buffer");
    } else if (next.hubLag !== undefined && prev.hubLag === undefined) {
      changed = true;
      log.info(fields, "hub source found");
    }
    if (changed) this.opts.onChange?.(next, prev);
  }
}
