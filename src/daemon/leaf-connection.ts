/**
 * The daemon's one connection to its local leaf nats-server: options from the bootstrap file,
 * a connect loop retried with backoff until the daemon stops, hooks for parts that need the
 * connection once it exists, and a drain bounded by a deadline.
 */
import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import type { BootstrapConfig } from "../config/schema.js";
import { GatewayError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { backoff, delay } from "../util/backoff.js";
import { withDeadline } from "./deadline.js";

/** Builds the nats.js connection options for the local leaf from the bootstrap config. */
export async function leafConnectionOptions(config: BootstrapConfig): Promise<ConnectionOptions> {
  const n = config.nats;
  const opts: ConnectionOptions = {
    servers: n.servers,
    name: `edge-gateway ${config.device.id}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    // The device's own inbox prefix: under fleet auth the hub delivers replies to this device
    // only on `_INBOX_<deviceId>.>` (docs/security.md), never another device's `_INBOX.>`.
    // The publisher's PubAck inbox follows the connection's prefix too.
    inboxPrefix: `_INBOX_${config.device.id}`,
  };
  if (n.credentials) {
    try {
      opts.authenticator = credsAuthenticator(await readFile(n.credentials));
    } catch (cause) {
      throw new GatewayError("EGW_NATS_CONNECT", `cannot read nats.credentials ${n.credentials}: check the path and that the daemon may read it`, { cause });
    }
  }
  if (n.user) opts.user = n.user;
  if (n.password) opts.pass = n.password;
  if (n.token) opts.token = n.token;
  return opts;
}

export class LeafConnection {
  private nc?: NatsConnection;
  private hooks: ((nc: NatsConnection) => void)[] = [];
  private connecting?: Promise<void>;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly logger: Logger,
  ) {}

  /** The connection once made (undefined before, and after a stop that came first). */
  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /**
   * Connects in the background, retrying with backoff until the leaf answers or `signal`
   * aborts. Resolves when connected or given up; never rejects.
   */
  start(signal: AbortSignal): Promise<void> {
    this.connecting ??= this.connectLoop(signal);
    return this.connecting;
  }

  /** Resolves once connected, or given up, or `signal` aborted. Never rejects. */
  async settled(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.connecting;
    if (signal.aborted) return;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", (onAbort = () => resolve()), { once: true }));
    try {
      await Promise.race([this.connecting, aborted]);
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  /** Calls `fn` with the connection once it is made (at once if it already is). */
  onConnected(fn: (nc: NatsConnection) => void): void {
    if (this.nc) fn(this.nc);
    else this.hooks.push(fn);
  }

  private async connectLoop(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const nc = await connect(this.opts);
        if (signal.aborted) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.logger.info({ server: nc.getServer() }, "connected to the local leaf");
        for (const fn of this.hooks.splice(0)) fn(nc);
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 20 === 0) {
          this.logger.warn({ err: errorMessage(err), servers: this.opts.servers, attempt }, "local leaf not reachable yet: readings are queued; retrying");
        }
        // At most 1 s: the leaf is local, asking it is cheap, and until it answers readings are only in memory.
        await delay(backoff(attempt, 250, 1000), signal);
      }
    }
  }

  /**
   * Drains the connection (its subscriptions and pending publishes), giving up at `deadline`
   * (ms since epoch): a leaf that cannot be reached (down, SIGSTOPped) must not hold the
   * shutdown, so then the connection is closed without draining. Resolves, never rejects.
   */
  async drain(deadline: number): Promise<void> {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    const drained = await withDeadline(
      nc.drain().then(
        () => true,
        () => false,
      ),
      deadline,
    );
    if (drained !== true) {
      this.logger.warn("NATS drain did not finish in time (leaf unreachable?): closing the connection");
      await withDeadline(nc.close().catch(() => undefined), Date.now() + 1000);
    }
  }
}
