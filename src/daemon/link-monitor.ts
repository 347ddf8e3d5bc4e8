/**
 * Watches the uplink and the leaf's buffer **without asking the hub anything** (issue 14: one
 * hub request per device every few seconds is N² traffic at fleet scale). Everything is read
 * from the device's own leaf nats-server on loopback:
 *
 * - the uplink: the leaf's own account statistics (`$SYS.REQ.ACCOUNT.PING.STATZ`, answered by
 *   the leaf itself, filtered to its server name) count its leafnode connections — the link to
 *   the hub is up while that count is above zero. A hub stream leader moving, or the hub's
 *   JetStream being briefly unavailable, does not change it: that is reported as `sourcing`.
 * - the hub's progress: the hub copies this device's stream through a *sourcing consumer* that
 *   it creates on the leaf stream. nats-server 2.9.10 creates it as a "direct" consumer, which the
 *   consumer list and `/jsz` do not show, so the monitor listens (locally) for the hub's create
 *   request to learn its name, then reads its `num_pending` (= readings the hub has not copied)
 *   and `push_bound` (= the hub is subscribed to its deliveries) with a local consumer info.
 * - the buffer: the leaf stream's info.
 *
 * After a daemon restart the consumer's name is unknown until the hub creates its next one (it
 * does on every link reconnect, stream leader change, or a stall of 3 s): `hubLag` and
 * `sourcing` stay `unknown` until then.
 */
import { jetstreamManager, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { delay } from "../drivers/util.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";

export interface LinkState {
  /** The leaf link to the hub: `up` while the leaf has a leafnode connection (read on the leaf). */
  hub: "up" | "down" | "unknown";
  /** When `hub` last changed (ms since epoch). */
  since: number;
  /**
   * Whether the hub stream is copying this device's stream: `active` while the hub's sourcing
   * consumer on the leaf stream has the hub subscribed, `waiting` while the link is up but it has
   * none (the hub's JetStream briefly unavailable, its stream leader moving, or the device not
   * registered), `unknown` before the first sighting or while the link is down.
   */
  sourcing: "active" | "waiting" | "unknown";
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
  /** Kept for callers; the monitor no longer talks to the hub's domain. */
  hubDomain?: string;
  /** Leaf stream (the one the hub sources). */
  stream: string;
  intervalMs?: number;
  /**
   * How long the link may be up with no active sourcing before it is logged as a warning
   * (a stream leader change takes a few seconds; default 30 s).
   */
  sourcingGraceMs?: number;
  logger: Logger;
  onChange?: (state: LinkState, previous: LinkState) => void;
}

interface AccountStatzReply {
  data?: { account_statz?: { acc: string; leafnodes?: number }[] };
}

interface ConsumerCreateBody {
  config?: { name?: string; durable_name?: string; deliver_subject?: string; direct?: boolean; filter_subject?: string };
}

export class LinkMonitor {
  state: LinkState = { hub: "unknown", since: Date.now(), sourcing: "unknown", buffer: { messages: 0, bytes: 0 } };
  private readonly opts: LinkMonitorOptions;
  private nc?: NatsConnection;
  private local?: JetStreamManager;
  /** Last leaf stream sequence the hub was known to have copied. */
  private sentThroughSeq?: number;
  /** Name of the hub's sourcing consumer on the leaf stream, learnt from its create request. */
  private sourceConsumer?: string;
  private waitingSince?: number;
  private waitingWarned = false;

  constructor(opts: LinkMonitorOptions) {
    this.opts = opts;
  }

  /** The name of the hub's current sourcing consumer on the leaf stream, if seen. */
  get sourceConsumerName(): string | undefined {
    return this.sourceConsumer;
  }

  /** Checks every interval until `signal` aborts. Resolves, never rejects. */
  async run(nc: NatsConnection, signal: AbortSignal): Promise<void> {
    this.nc = nc;
    this.local = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
    const sniff = this.watchSourceConsumers(nc);
    try {
      while (!signal.aborted) {
        await this.check().catch((err) => this.opts.logger.debug({ err: errorMessage(err) }, "link check failed"));
        if (!(await delay(this.opts.intervalMs ?? 5000, signal))) break;
      }
    } finally {
      sniff?.unsubscribe();
    }
  }

  /**
   * The hub (re)creates its sourcing consumer with a request that the leaf maps to
   * `$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`; its `deliver.<deviceId>` prefix (DESIGN
   * A3) tells it apart from any other consumer. Local subscription: the leaf does not pass
   * `$JS.API.>` interest to the hub.
   */
  private watchSourceConsumers(nc: NatsConnection): Subscription | undefined {
    const prefix = `deliver.${this.opts.deviceId}.`;
    try {
      return nc.subscribe(`$JS.API.CONSUMER.CREATE.${this.opts.stream}.>`, {
        callback: (err, msg) => {
          if (err) return;
          try {
            const body = msg.json<ConsumerCreateBody>();
            const c = body.config;
            if (!c?.direct || !c.deliver_subject?.startsWith(prefix)) return;
            const name = c.name ?? c.durable_name ?? msg.subject.split(".")[5];
            if (name) this.sourceConsumer = name;
          } catch {
            // Not a JSON create request: not the hub's.
          }
        },
      });
    } catch (err) {
      this.opts.logger.debug({ err: errorMessage(err) }, "cannot watch for the hub's source consumer");
      return undefined;
    }
  }

  /** Leafnode connections of the leaf, or undefined if the leaf has no system account to ask. */
  private async leafnodeCount(): Promise<number | undefined> {
    const nc = this.nc!;
    const serverName = nc.info?.server_name;
    // The filter keeps any other server (e.g. a hub sharing a system account) from answering.
    const body = serverName ? JSON.stringify({ server_name: serverName }) : "{}";
    const reply = await nc.request("$SYS.REQ.ACCOUNT.PING.STATZ", body, { timeout: 2000 });
    const statz = reply.json<AccountStatzReply>();
    const accounts = statz.data?.account_statz ?? [];
    return accounts.reduce((n, a) => n + (a.leafnodes ?? 0), 0);
  }

  /** One refresh of the state. Local requests only. */
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
    let link: LinkState["hub"];
    try {
      const n = await this.leafnodeCount();
      link = n === undefined ? "unknown" : n > 0 ? "up" : "down";
    } catch (err) {
      // No responders: the leaf runs without a system account; a timeout: the leaf is unreachable.
      link = /no responders/i.test(errorMessage(err)) ? "unknown" : "down";
    }
    next.hubLag = undefined;
    next.sourcing = "unknown";
    if (link === "up") {
      next.sourcing = "waiting";
      if (this.sourceConsumer) {
        try {
          const ci = await this.local!.consumers.info(this.opts.stream, this.sourceConsumer);
          next.hubLag = ci.num_pending;
          next.sourcing = ci.push_bound ? "active" : "waiting";
        } catch (err) {
          if (err instanceof JetStreamApiError && err.status === 404) this.sourceConsumer = undefined;
        }
      }
    }
    // The sourcing consumer's pending count is current while the hub is bound to it.
    next.oldestUnsentAgeMs = await this.oldestUnsentAge(leafSeqs, next.sourcing === "active" ? next.hubLag : undefined).catch(() => undefined);
    if (link !== prev.hub) {
      next.hub = link;
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
    const fields = {
      hub: next.hub,
      sourcing: next.sourcing,
      bufferMessages: next.buffer.messages,
      bufferBytes: next.buffer.bytes,
      oldestAgeMs: next.buffer.oldestAgeMs,
      hubLag: next.hubLag,
    };
    let changed = false;
    if (next.hub !== prev.hub) {
      changed = true;
      if (next.hub === "up") log.info(fields, "uplink up: the leaf is linked to the hub");
      else if (next.hub === "down") log.warn(fields, "uplink down: readings are kept in the leaf stream until it returns");
      else log.info(fields, "uplink state unknown: the leaf answers no account statistics (no system account)");
    }
    if (next.sourcing !== prev.sourcing) {
      changed = true;
      if (next.sourcing === "active") log.info(fields, "the hub is sourcing this device's stream");
    }
    // "Link up but nobody copying" is the hub's JetStream (leader election, a node restarting,
    // or no source for this device): not a link failure, and usually over within seconds.
    if (next.hub === "up" && next.sourcing === "waiting") {
      this.waitingSince ??= Date.now();
      if (!this.waitingWarned && Date.now() - this.waitingSince >= (this.opts.sourcingGraceMs ?? 30_000)) {
        this.waitingWarned = true;
        log.warn(fields, "uplink up but the hub is not sourcing this device: hub JetStream unavailable, or the device is not registered (edge-gateway cloud add-device)");
      }
    } else {
      this.waitingSince = undefined;
      this.waitingWarned = false;
    }
    if ((prev.hubLag ?? 0) > 0 && next.hubLag === 0) {
      changed = true;
      log.info(fields, "hub caught up with this device's buffer");
    } else if (next.hubLag !== undefined && prev.hubLag === undefined) {
      changed = true;
    }
    if (changed) this.opts.onChange?.(next, prev);
  }
}
